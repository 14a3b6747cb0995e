"""scripts/import_graph.py on a package tree written here: deferred and relative imports are edges,
a circle through them is found, an import of a name resolves to its module, and an import from
rewards/ or envs/ into rl/ is reported as upward."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
ig = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ig)


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_deferred_relative_and_name_imports_make_a_circle(tmp_path):
    _write(tmp_path, {
        "rl/__init__.py": "",
        "rl/a.py": "from rl.b import thing\n",  # a name inside rl.b: the edge is to rl.b
        "rl/b.py": "def f():\n    from . import c\n",  # deferred and relative: rl.b -> rl.c
        "rl/c.py": "import rl.a\n",
        "rl/d.py": "import os\nimport rl.a\n",  # into the circle, not part of it; os is outside
        "rewards/__init__.py": "",
        "rewards/judge.py": "def load():\n    from rl.d import x\n",
    })
    g = ig.graph(tmp_path, ("rl", "rewards"))
    assert g["rl.a"] == {"rl.b"} and g["rl.b"] == {"rl.c"} and g["rl.d"] == {"rl.a"}
    assert ig.circles(g) == [["rl.a", "rl.b", "rl.c"]]
    assert ig.upward(g) == [("rewards.judge", "rl.d")]


def test_a_tree_without_circles_or_upward_imports_is_clean(tmp_path):
    _write(tmp_path, {"envs/__init__.py": "", "envs/base.py": "", "envs/math.py": "from envs.base import Env\n",
                      "rl/__init__.py": "", "rl/trainer.py": "from envs.math import MathEnv\n"})
    g = ig.graph(tmp_path, ("rl", "envs"))
    assert ig.circles(g) == [] and ig.upward(g) == []


def test_layers_rank_packages_and_forbid_the_engines_the_parallel_layer(tmp_path):
    _write(tmp_path, {
        "envs/__init__.py": "", "envs/base.py": "from rewards.x import y\n",  # envs below rewards
        "rewards/__init__.py": "", "rewards/x.py": "",
        "analysis/__init__.py": "", "analysis/fit.py": "from envs.base import z\n",  # downward: fine
        "rl/__init__.py": "", "rl/trainer.py": "from analysis.fit import f\nfrom launch.cli import main\n",
        "rl/rollout/__init__.py": "", "rl/rollout/vllm.py": "from rl.parallel.weights import b\n",
        "rl/parallel/__init__.py": "", "rl/parallel/weights.py": "",
        "launch/__init__.py": "", "launch/cli.py": "",
    })
    g = ig.graph(tmp_path, ig.PACKAGES)
    assert ig.upward(g) == [("envs.base", "rewards.x"), ("rl.rollout.vllm", "rl.parallel.weights"),
                            ("rl.trainer", "launch.cli")]
