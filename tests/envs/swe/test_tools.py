"""Tool-call parsing: Qwen2.5's <tool_call> JSON blocks; everything malformed is an error message."""

import json

from envs.swe.tools import COMPACT, TOOL_NAMES, ToolCall, parse_tool_calls, system_prompt


def call(name, **arguments):
    return f'<tool_call>\n{json.dumps({"name": name, "arguments": arguments})}\n</tool_call>'


def test_one_call():
    [parsed] = parse_tool_calls("Let me look.\n" + call("view", path="pocketlib/text.py", start_line=3, end_line=9))
    assert parsed.error is None
    assert parsed.call == ToolCall("view", {"path": "pocketlib/text.py", "start_line": 3, "end_line": 9})


def test_several_calls_in_order():
    parsed = parse_tool_calls(call("search", pattern="def slugify") + "\n" + call("submit"))
    assert [p.call.name for p in parsed] == ["search", "submit"]


def test_render_round_trips():
    c = ToolCall("replace", {"path": "a.py", "old": "x < 1", "new": 'x <= 1  # "quoted"\n'})
    assert parse_tool_calls(c.render())[0].call == c


def test_no_call_is_an_error():
    [parsed] = parse_tool_calls("I think the bug is in slugify.")
    assert parsed.call is None and "no tool call" in parsed.error


def test_garbage_from_a_tiny_model_is_an_error_not_a_crash():
    for text in ("", "<tool_call>", "<tool_call></tool_call>", "<tool_call>{]</tool_call>", "\x00\x01<tool_call>[1, 2]",
                 "<tool_call>null</tool_call>", "<tool_call>{\"name\": 3}</tool_call>", "</tool_call><tool_call>"):
        parsed = parse_tool_calls(text)
        assert parsed and all(p.call is None and p.error for p in parsed), text


def test_invalid_json():
    [parsed] = parse_tool_calls('<tool_call>{"name": "view", "arguments": {"path": }}</tool_call>')
    assert "not valid JSON" in parsed.error


def test_unclosed_block():
    parsed = parse_tool_calls(call("view", path=".") + '<tool_call>{"name": "submit"')
    assert parsed[0].call is not None and "not closed" in parsed[1].error


def test_unknown_tool_lists_the_tools():
    [parsed] = parse_tool_calls(call("rm_rf", path="/"))
    assert "unknown tool 'rm_rf'" in parsed.error and all(n in parsed.error for n in TOOL_NAMES)


def test_argument_errors():
    assert "missing old, new" in parse_tool_calls(call("replace", path="a.py"))[0].error
    assert "unknown flag" in parse_tool_calls(call("view", path="a.py", flag=1))[0].error
    assert "must be a string" in parse_tool_calls(call("run", command=["ls"]))[0].error
    assert "must be an integer" in parse_tool_calls(call("view", path="a", start_line="three"))[0].error
    assert "must be an integer" in parse_tool_calls(call("view", path="a", start_line=True))[0].error


def test_lenient_where_models_commonly_slip():
    # arguments double-encoded as a JSON string, integers as strings, no arguments for submit
    [a] = parse_tool_calls('<tool_call>{"name": "view", "arguments": "{\\"path\\": \\"x\\", \\"start_line\\": \\"2\\"}"}'
                           "</tool_call>")
    assert a.call == ToolCall("view", {"path": "x", "start_line": 2})
    [b] = parse_tool_calls('<tool_call>{"name": "submit"}</tool_call>')
    assert b.call == ToolCall("submit", {})


def test_system_prompts():
    full = system_prompt("full")
    assert "<tools>" in full and '"name": "replace"' in full and "<tool_call></tool_call>" in full
    assert all(f'"name": "{n}"' in full for n in TOOL_NAMES)
    short = system_prompt("compact", intro="Fix the bug.")
    assert short == "Fix the bug.\n" + COMPACT and len(short) < 260
