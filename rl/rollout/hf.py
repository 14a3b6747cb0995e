"""The `hf` engine: transformers' `generate` on the training model itself.

It holds a reference to the policy being trained, so it always samples from the current weights
and `update_weights` has nothing to copy. Prompts are left-padded in batches of at most
`batch_size` sequences; the per-token log-probs come from the raw logits of each step divided by
the temperature (the distribution the trainer scores), not from the top-p/top-k-processed scores.
"""

from __future__ import annotations

import torch
from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase

from rl.rollout.base import Completion, SamplingParams


class HFEngine:
    shares_training_model = True
    """Samples from the training model: under ZeRO-3 its parameters are gathered while it generates."""

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, batch_size: int = 256):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.version = 0
        self.eos_ids = eos_token_ids(model, tokenizer)
        self.pad_id = tokenizer.pad_token_id

    def update_weights(self, model: torch.nn.Module, version: int) -> None:
        if model is not self.model:
            raise ValueError("the hf engine samples from the training model itself; it cannot load another module")
        self.version = version

    def generate(self, prompt_ids: list[list[int]], params: SamplingParams) -> list[list[Completion]]:
        # one row per (prompt, sample); rows of one prompt are adjacent
        rows = [ids for ids in prompt_ids for _ in range(params.n)]
        out: list[Completion] = []
        for start in range(0, len(rows), self.batch_size):
            out.extend(self._generate_batch(rows[start : start + self.batch_size], params))
        return [out[i * params.n : (i + 1) * params.n] for i in range(len(prompt_ids))]

    @torch.no_grad()
    def _generate_batch(self, rows: list[list[int]], params: SamplingParams) -> list[Completion]:
        device = next(self.model.parameters()).device
        width = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):  # left padding: every prompt ends at the same column
            input_ids[i, width - len(r) :] = torch.tensor(r)
            attention_mask[i, width - len(r) :] = 1
        config = GenerationConfig(
            do_sample=True,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k,  # 0 disables (transformers' default would be 50)
            max_new_tokens=params.max_new_tokens,
            eos_token_id=self.eos_ids,
            pad_token_id=self.pad_id,
            output_logits=True,
            return_dict_in_generate=True,
        )
        was_training = self.model.training
        self.model.eval()
        try:
            result = self.model.generate(
                input_ids=input_ids.to(device), attention_mask=attention_mask.to(device), generation_config=config
            )
        finally:
            self.model.train(was_training)
        tokens = result.sequences[:, width:].cpu()  # [B, T]
        logits = torch.stack(result.logits, dim=1).float().cpu()  # [B, T, V], raw (unprocessed)
        logprobs = torch.log_softmax(logits / params.temperature, dim=-1)
        token_logprobs = logprobs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)

        completions = []
        for i, r in enumerate(rows):
            ids = tokens[i].tolist()
            end = next((t + 1 for t, tok in enumerate(ids) if tok in self.eos_ids), None)
            finish = "stop" if end is not None else "length"
            ids = ids[:end] if end is not None else ids
            completions.append(
                Completion(
                    prompt_ids=list(r),
                    token_ids=ids,
                    logprobs=token_logprobs[i, : len(ids)].tolist(),
                    finish_reason=finish,
                    text=self.tokenizer.decode(ids, skip_special_tokens=True),
                    policy_versions=[self.version] * len(ids),
                )
            )
        return completions

    def close(self) -> None:
        pass


def eos_token_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """The tokens that end a completion: the generation config's EOS ids and the tokenizer's."""
    ids = model.generation_config.eos_token_id if model.generation_config is not None else None
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    if not ids:
        raise ValueError("neither the model's generation config nor the tokenizer defines an end-of-sequence token")
    return ids
