"""Checks every engine must pass (the Engine protocol of rl/rollout/base.py), shared by the tests
of the hf, vllm and vllm-server engines."""


def check_completions(groups, prompts, n, max_new_tokens, eos_ids, tokenizer):
    """n completions per prompt in prompt order; one log-prob and one policy version per token; a
    completion ends on its only EOS ('stop') or at the budget ('length'); text is the decoded tokens."""
    assert [len(g) for g in groups] == [n] * len(prompts)
    for p, g in zip(prompts, groups):
        for c in g:
            assert c.prompt_ids == p
            assert len(c.logprobs) == len(c.token_ids) == len(c.policy_versions)
            eos_at = [i for i, t in enumerate(c.token_ids) if t in eos_ids]
            if c.finish_reason == "stop":
                assert eos_at == [len(c.token_ids) - 1]
            else:
                assert eos_at == [] and len(c.token_ids) == max_new_tokens
            assert c.text == tokenizer.decode(c.token_ids, skip_special_tokens=True)
            assert all(lp <= 0.0 for lp in c.logprobs)
