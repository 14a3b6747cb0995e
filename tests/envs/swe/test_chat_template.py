"""The tool prompt and the observation tokens under Qwen2.5's own chat template (the one the SWE
recipe's Qwen2.5-Coder model uses; no download: its template on the tiny character tokenizer):
the system prompt is word for word what the template writes when given the tools, several tool
results in one turn render as Qwen renders them, and a multi-turn episode's token sequence is
exactly the template's rendering of the conversation."""

import pytest

from envs.swe.tools import INTRO, TOOLS, ToolCall, system_prompt
from rl.models import build_char_tokenizer
from rl.rollout.multiturn import ObservationTokenizer

# Qwen2.5(-Coder)-Instruct's chat template (tokenizer_config.json), as published.
QWEN25_TEMPLATE = (
    "{%- if tools %}\n"
    "    {{- '<|im_start|>system\\n' }}\n"
    "    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- messages[0]['content'] }}\n"
    "    {%- else %}\n"
    "        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}\n"
    "    {%- endif %}\n"
    "    {{- \"\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided "
    "with function signatures within <tools></tools> XML tags:\\n<tools>\" }}\n"
    "    {%- for tool in tools %}\n"
    "        {{- \"\\n\" }}\n"
    "        {{- tool | tojson }}\n"
    "    {%- endfor %}\n"
    "    {{- \"\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\\"name\\\": <function-name>, \\\"arguments\\\": "
    "<args-json-object>}\\n</tool_call><|im_end|>\\n\" }}\n"
    "{%- else %}\n"
    "    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n"
    "    {%- else %}\n"
    "        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}\n"
    "    {%- endif %}\n"
    "{%- endif %}\n"
    "{%- for message in messages %}\n"
    "    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) or (message.role == "
    "\"assistant\" and not message.tool_calls) %}\n"
    "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n"
    "    {%- elif message.role == \"assistant\" %}\n"
    "        {{- '<|im_start|>' + message.role }}\n"
    "        {%- if message.content %}\n"
    "            {{- '\\n' + message.content }}\n"
    "        {%- endif %}\n"
    "        {%- for tool_call in message.tool_calls %}\n"
    "            {%- if tool_call.function is defined %}\n"
    "                {%- set tool_call = tool_call.function %}\n"
    "            {%- endif %}\n"
    "            {{- '\\n<tool_call>\\n{\"name\": \"' }}\n"
    "            {{- tool_call.name }}\n"
    "            {{- '\", \"arguments\": ' }}\n"
    "            {{- tool_call.arguments | tojson }}\n"
    "            {{- '}\\n</tool_call>' }}\n"
    "        {%- endfor %}\n"
    "        {{- '<|im_end|>\\n' }}\n"
    "    {%- elif message.role == \"tool\" %}\n"
    "        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != \"tool\") %}\n"
    "            {{- '<|im_start|>user' }}\n"
    "        {%- endif %}\n"
    "        {{- '\\n<tool_response>\\n' }}\n"
    "        {{- message.content }}\n"
    "        {{- '\\n</tool_response>' }}\n"
    "        {%- if loop.last or (messages[loop.index0 + 1].role != \"tool\") %}\n"
    "            {{- '<|im_end|>\\n' }}\n"
    "        {%- endif %}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|im_start|>assistant\\n' }}\n"
    "{%- endif %}\n"
)


@pytest.fixture(scope="module")
def qwen():
    tok = build_char_tokenizer()
    tok.chat_template = QWEN25_TEMPLATE
    return tok


def render(tok, messages, generation_prompt=False, **kw):
    return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt, **kw)


def test_the_system_prompt_is_what_qwen_writes_for_the_tools(qwen):
    user = {"role": "user", "content": "fix it"}
    ours = render(qwen, [{"role": "system", "content": system_prompt("full", INTRO)}, user], True)
    theirs = render(qwen, [{"role": "system", "content": INTRO}, user], True,
                    tools=[{"type": "function", "function": t} for t in TOOLS])
    assert ours == theirs


def test_several_tool_results_render_as_one_qwen_user_turn(qwen):
    observe = ObservationTokenizer(qwen)
    msgs = [{"role": "tool", "content": "A"}, {"role": "tool", "content": "B"}]
    assert qwen.decode(observe(msgs)) == ("\n<|im_start|>user\n<tool_response>\nA\n</tool_response>\n<tool_response>\nB\n"
                                          "</tool_response><|im_end|>\n<|im_start|>assistant\n")


def test_episode_tokens_are_the_templates_rendering_of_the_conversation(qwen):
    """Token in, token out: prompt + each turn's sampled tokens (ending <|im_end|>) + each
    observation's tokens is the chat template's rendering of the same conversation."""
    observe = ObservationTokenizer(qwen)
    eos = qwen.eos_token_id
    system = {"role": "system", "content": system_prompt("full", INTRO)}
    user = {"role": "user", "content": "tests/test_text.py::test_truncate fails"}
    turns = [ToolCall("view", {"path": "pocketlib/text.py", "start_line": 1, "end_line": 3}).render(),
             "Found it.\n" + ToolCall("replace", {"path": "a.py", "old": "<", "new": "<="}).render()
             + ToolCall("run_tests", {}).render(),
             ToolCall("submit", {}).render()]
    results = [["1\tdef f():"], ["Edited a.py", "3 passed\n[exit code 0]"]]
    ids = qwen.apply_chat_template([system, user], add_generation_prompt=True, tokenize=True, return_dict=False)
    conversation = [system, user]
    for i, turn in enumerate(turns):
        ids += qwen(turn, add_special_tokens=False).input_ids + [eos]  # what the model samples
        conversation.append({"role": "assistant", "content": turn})
        if i < len(results):
            tool_msgs = [{"role": "tool", "content": r} for r in results[i]]
            ids += observe(tool_msgs)
            conversation += tool_msgs
    assert qwen.decode(ids) + "\n" == render(qwen, conversation)  # the template ends a turn with "<|im_end|>\n"
