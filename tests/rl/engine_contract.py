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


def check_seeded(engine, prompts):
    """torch.manual_seed makes sampling repeatable: the same seed gives the same tokens, another
    seed other tokens."""
    import torch

    from rl.rollout.base import SamplingParams

    def sample(seed):
        torch.manual_seed(seed)
        return [[c.token_ids for c in g] for g in engine.generate(prompts, SamplingParams(n=2, max_new_tokens=5))]

    assert sample(7) == sample(7) != sample(8)
