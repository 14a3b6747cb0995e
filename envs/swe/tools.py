"""The agent's tools: their schemas, the system prompt that describes them, and the parser of tool
calls in the chat template's format.

Tool calls follow Qwen2.5's convention (also Hermes' and what vLLM's `hermes` parser reads): inside
the assistant turn,

    <tool_call>
    {"name": "replace", "arguments": {"path": "pocketlib/text.py", "old": "a < b", "new": "a <= b"}}
    </tool_call>

one block per call, several per turn allowed; results come back as `tool` messages, which Qwen's
chat template renders as <tool_response> blocks. The tool descriptions are written into the system
message in the same words Qwen2.5's template uses when given `tools=`, so a Qwen2.5-Coder model sees
what it was trained on. Anything that is not a well-formed call (the tiny CPU model writes mostly
that) becomes an error message for the model, never an exception.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

TOOLS: list[dict[str, Any]] = [
    {"name": "view", "description": "Show a file with line numbers (optionally only lines start_line..end_line), "
     "or list a directory two levels deep.",
     "parameters": {"type": "object", "properties": {
         "path": {"type": "string", "description": "File or directory, relative to the repository root."},
         "start_line": {"type": "integer", "description": "First line to show (1-based)."},
         "end_line": {"type": "integer", "description": "Last line to show; -1 for the end of the file."}},
         "required": ["path"]}},
    {"name": "search", "description": "Search files for a Python regular expression; prints path:line: text.",
     "parameters": {"type": "object", "properties": {
         "pattern": {"type": "string", "description": "Regular expression."},
         "path": {"type": "string", "description": "File or directory to search (default: the whole repository)."}},
         "required": ["pattern"]}},
    {"name": "replace", "description": "Replace the one occurrence of `old` in a file by `new`. `old` must match the "
     "file exactly (whitespace included) and occur exactly once; add surrounding lines to make it unique.",
     "parameters": {"type": "object", "properties": {
         "path": {"type": "string"}, "old": {"type": "string"}, "new": {"type": "string"}},
         "required": ["path", "old", "new"]}},
    {"name": "create", "description": "Create a new file with the given content (never overwrites).",
     "parameters": {"type": "object", "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
                    "required": ["path", "content"]}},
    {"name": "run", "description": "Run a bash command in the repository root (no network) and show its output.",
     "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}},
    {"name": "run_tests", "description": "Run pytest on the repository's tests, or on the given test file or node id.",
     "parameters": {"type": "object", "properties": {"path": {"type": "string", "description": "Default: tests"}},
                    "required": []}},
    {"name": "submit", "description": "Finish: your changes to the repository are graded by hidden tests.",
     "parameters": {"type": "object", "properties": {}, "required": []}},
]
TOOL_NAMES = tuple(t["name"] for t in TOOLS)
_SPECS = {t["name"]: t for t in TOOLS}

INTRO = (
    "You are a software engineer. You fix a bug in the Python repository in your working directory by "
    "inspecting and editing it with tools, then call submit."
)
COMPACT = (
    'Tools: view(path,start_line,end_line) search(pattern,path) replace(path,old,new) create(path,content) '
    'run(command) run_tests(path) submit(). Call: <tool_call>{"name":"view","arguments":{"path":"."}}</tool_call>'
)

_CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.S)


def system_prompt(style: str = "full", intro: str = INTRO) -> str:
    """The system message: `intro`, then the tools in Qwen2.5's words (style "full") or in one
    line (style "compact", for the tiny CPU model's short context)."""
    if style == "compact":
        return f"{intro}\n{COMPACT}"
    schemas = "\n".join(json.dumps({"type": "function", "function": t}) for t in TOOLS)
    return (
        f"{intro}\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        f"You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{schemas}\n</tools>\n\n"
        "For each function call, return a json object with function name and arguments within <tool_call></tool_call> "
        'XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
    )


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]

    def render(self) -> str:
        """The call as the model should write it."""
        return f"<tool_call>\n{json.dumps({'name': self.name, 'arguments': self.arguments})}\n</tool_call>"


@dataclass(frozen=True)
class ParsedCall:
    """One <tool_call> block: a valid call, or the error message the model gets instead."""

    call: ToolCall | None
    error: str | None


def parse_tool_calls(text: str) -> list[ParsedCall]:
    """Every <tool_call> block of an assistant turn, in order, each a call or an error. A turn with
    no block, or with an unclosed one, yields a single error."""
    blocks = _CALL.findall(text)
    rest = _CALL.sub("", text)
    out = [_parse_block(b) for b in blocks]
    if "<tool_call>" in rest:
        out.append(ParsedCall(None, "a <tool_call> block is not closed with </tool_call>"))
    if not out:
        out.append(ParsedCall(None, "no tool call found. Call a tool as <tool_call>{\"name\": ..., \"arguments\": "
                                    "{...}}</tool_call>; tools: " + ", ".join(TOOL_NAMES)))
    return out


def _parse_block(body: str) -> ParsedCall:
    try:
        obj = json.loads(body.strip())
    except json.JSONDecodeError as e:
        return ParsedCall(None, f"the tool call is not valid JSON ({e.msg} at position {e.pos})")
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return ParsedCall(None, 'a tool call must be a JSON object {"name": <tool>, "arguments": {...}}')
    name, args = obj["name"], obj.get("arguments", {})
    if isinstance(args, str):  # some models double-encode the arguments
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError:
            return ParsedCall(None, f"the arguments of {name} are not a JSON object")
    if not isinstance(args, dict):
        return ParsedCall(None, f"the arguments of {name} must be a JSON object")
    error = check_arguments(name, args)
    return ParsedCall(None, error) if error else ParsedCall(ToolCall(name, _coerce(name, args)), None)


def check_arguments(name: str, args: dict[str, Any]) -> str | None:
    """An error message if `args` do not fit the tool's schema, else None."""
    if name not in _SPECS:
        return f"unknown tool '{name}'; tools: {', '.join(TOOL_NAMES)}"
    params = _SPECS[name]["parameters"]
    props, required = params["properties"], params["required"]
    missing = [k for k in required if k not in args]
    unknown = [k for k in args if k not in props]
    if missing or unknown:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + ([f"unknown {', '.join(unknown)}"] if unknown else [])
        return f"{name}: {'; '.join(parts)} (arguments: {', '.join(props) or 'none'})"
    for key, value in args.items():
        kind = props[key]["type"]
        if kind == "string" and not isinstance(value, str):
            return f"{name}: '{key}' must be a string"
        if kind == "integer" and not (isinstance(value, int) and not isinstance(value, bool)) and not (
            isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip())
        ):
            return f"{name}: '{key}' must be an integer"
    return None


def _coerce(name: str, args: dict[str, Any]) -> dict[str, Any]:
    props = _SPECS[name]["parameters"]["properties"]
    return {k: int(v) if props[k]["type"] == "integer" and isinstance(v, str) else v for k, v in args.items()}
