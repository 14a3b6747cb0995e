"""The layers stay as drawn (scripts/import_graph.py; issue 16): no import circle between the
package's modules, top-level or deferred, and no import into a higher layer (envs < rewards <
analysis < rl < launch; rl/rollout/ below the trainer and its parallel layer). And the sizes that
keep files readable: no module over 500 lines, no function over 80 lines unless its docstring says
why ("Long because ...")."""

import ast
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
ig = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ig)

CODE = (*ig.PACKAGES, "scripts", "bench", "tests")
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 500, 80


def _python_files():
    return [p for d in CODE for p in sorted((ROOT / d).rglob("*.py"))]


def test_no_import_circles():
    assert ig.circles(ig.graph()) == [], "run python scripts/import_graph.py"


def test_no_import_into_a_higher_layer():
    assert ig.upward(ig.graph()) == [], "run python scripts/import_graph.py"


def test_modules_stay_under_500_lines():
    long = {str(p.relative_to(ROOT)): n for p in _python_files() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_functions_over_80_lines_say_why():
    long = []
    for p in _python_files():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES and "Long because" not in (ast.get_docstring(node) or ""):
                    long.append(f"{p.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)")
    assert long == []
