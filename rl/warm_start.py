"""Supervised warm start: a short fine-tune on the environment's gold answers before RL.

A randomly initialised tiny model never samples a correct answer, so RL has no signal. A real run
starts from a pretrained model that sometimes answers correctly; a short supervised fine-tune on
gold completions (cross-entropy on the completion tokens only) puts the tiny model in the same
place. The result is cached under <model>/warm_start/<key>, the key hashing everything that
determines it (the model files, the warm-start settings, the environment, the seed), so it is
trained once and reused by every run and test that asks for the same thing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import get_scheduler

from envs import Env
from rl.config import Recipe
from rl.models import load_model, load_tokenizer, model_fingerprint, render_prompt, resolve_model_path


def warm_start_key(recipe: Recipe, model_dir: Path | None = None) -> str:
    """`model_dir`: recipe.model.path resolved (rl.models.resolve_model_path), if the caller has it."""
    blob = json.dumps(
        {
            "model": model_fingerprint(model_dir or resolve_model_path(recipe.model.path)),
            "dtype": recipe.model.dtype,
            "warm_start": recipe.model.warm_start.model_dump(mode="json"),
            "env": recipe.env.model_dump(mode="json"),
            "seed": recipe.seed,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def warm_start_path(recipe: Recipe, model_dir: Path | None = None) -> Path:
    """Where the warm-started model lives: beside the model if it is a writable local directory, else
    (a hub id, whose snapshot in the Hugging Face cache is not ours to write) in the run directory."""
    base = Path(recipe.model.path)
    local = base.is_dir() and os.access(base, os.W_OK)
    root = base / "warm_start" if local else recipe.run_dir / "warm_start"
    return root / warm_start_key(recipe, model_dir)


def ensure_warm_start(recipe: Recipe, env: Env, progress: bool = True) -> Path:
    """The path of the model to start RL from: the warm-started model (trained now if not cached),
    or the recipe's model when the warm start is off."""
    cfg = recipe.model.warm_start
    model_dir = resolve_model_path(recipe.model.path)  # once: for a hub id, a lookup in the hub's cache (or the hub)
    if cfg.steps == 0:
        return model_dir
    out = warm_start_path(recipe, model_dir)
    if (out / "config.json").is_file():
        return out

    tokenizer = load_tokenizer(model_dir)
    model = load_model(model_dir, recipe.model.dtype)
    model.train()
    torch.manual_seed(recipe.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = get_scheduler("cosine", optimizer, num_warmup_steps=cfg.warmup_steps, num_training_steps=cfg.steps)
    bar = tqdm(range(cfg.steps), desc="warm start (SFT)", disable=not progress, leave=False)
    for step in bar:
        prompts = env.train_prompts(step * cfg.batch_size, cfg.batch_size)
        input_ids, attention_mask, labels = _sft_batch(
            tokenizer, [render_prompt(tokenizer, p.messages) for p in prompts], [env.gold_completion(p) for p in prompts]
        )
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1]
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(),
            labels[:, 1:].reshape(-1),
            ignore_index=-100,
            label_smoothing=cfg.label_smoothing,
        )
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        bar.set_postfix(loss=f"{loss.item():.3f}")

    tmp = out.parent / f".tmp-{out.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "warm_start.json").write_text(json.dumps({"from": str(recipe.model.path), **cfg.model_dump()}, indent=1))
    if out.exists():  # another process finished the same warm start first
        shutil.rmtree(tmp)
    else:
        os.rename(tmp, out)
    return out


def _sft_batch(
    tokenizer, prompt_ids: list[list[int]], completions: list[str]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded prompt+completion+EOS ids, with labels -100 except on completion tokens."""
    rows, label_rows = [], []
    for p, text in zip(prompt_ids, completions):
        c = tokenizer(text, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
        rows.append(p + c)
        label_rows.append([-100] * len(p) + c)
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for i, (r, lab) in enumerate(zip(rows, label_rows)):
        input_ids[i, : len(r)] = torch.tensor(r)
        attention_mask[i, : len(r)] = 1
        labels[i, : len(lab)] = torch.tensor(lab)
    return input_ids, attention_mask, labels
