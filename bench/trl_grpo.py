"""Asymptote's GRPO against TRL's GRPOTrainer: the same tiny model, data, reward, group size, lengths
and number of optimizer steps; seconds per step and completion tokens per second, and their ratio.

    python bench/trl_grpo.py [--steps 10] [--recipe recipes/tiny/grpo_math.yaml] [key.sub=value ...]

(needs `pip install trl`, or `pip install -e .[bench]`). The recipe (with any overrides, which apply
to both trainers) sets everything: both start from the demo's warm-started model (models/tiny-math,
built and warm-started if missing, cached there) with the same tokenizer, and train on the env's
training prompts in the same order (TRL: shuffle_dataset=False over the env's stream), rendered by
the same chat template (TRL gets the conversational messages and renders them with the same
tokenizer), scored by the recipe's reward (rewards.compute_rewards, wrapped as a TRL reward function).
Asymptote runs first, then TRL, one after the other in this process; each writes into a temp dir.

How one Asymptote iteration maps onto one TRL optimizer step (one process):

    algorithm.group_size                      -> num_generations
    train.prompts_per_iteration x group_size  =  per_device_train_batch_size x gradient_accumulation_steps
                                                 (TRL counts completions, not prompts, in both)
    per_device_train_batch_size               =  the largest divisor of the completions per step that
                                                 is at most train.micro_batch_size (trl_batch_shape)
    steps_per_generation                      =  gradient_accumulation_steps (TRL's default): one
                                                 generation batch of prompts x group_size completions
                                                 per optimizer step, no old-log-prob pass (as Asymptote
                                                 with mini_batches = epochs = 1)
    train.mini_batches = train.epochs = 1     -> num_iterations = 1
    engine.max_new_tokens, temperature, top_p, top_k -> max_completion_length, temperature, top_p, top_k
    engine.name = hf                          -> use_vllm = False (transformers generate on both sides)
    loss ppo_clip (clip_low, clip_high)       -> epsilon, epsilon_high
    aggregation token_mean                    -> loss_type = "dapo" (tokens of the whole optimizer step)
    advantage grpo, scale_by_std              -> scale_rewards = "group" (or "none")
    kl.coef (k3, in the loss)                 -> beta
    optimizer (AdamW, lr, betas, eps, weight_decay, warmup, constant, max_grad_norm)
                                              -> optim adamw_torch, same values, constant_with_warmup
    float32, no gradient checkpointing        -> bf16 = False, gradient_checkpointing = False (TRL's
                                                 defaults are True for both)
    model.lora (r, alpha, dropout, targets)   -> peft_config = peft.LoraConfig(same values)

Step 1 of each trainer is reported apart (first-call overheads); s/step and tokens/s are over steps
2..N. TRL's step time is measured between its callbacks' on_step_end, so it includes everything the
trainer does per step (generation, reward, loss, optimizer); Asymptote's is one train_iteration.
Completion tokens count the sampled tokens including the EOS token on both sides (Asymptote:
compute/tokens; TRL: the completion_ids its reward function receives).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # runnable from a checkout without installing


def trl_batch_shape(prompts: int, group_size: int, micro_batch_size: int, world_size: int = 1) -> tuple[int, int]:
    """(per_device_train_batch_size, gradient_accumulation_steps) of TRL's GRPOConfig that make one
    optimizer step on `prompts` x `group_size` completions, in micro-batches of at most
    `micro_batch_size` completions per process (Asymptote's train.micro_batch_size).

    TRL needs per_device x world_size x accumulation = the completions of the step exactly, so
    the per-device batch is the largest divisor of the per-process share not above the micro-batch."""
    completions = prompts * group_size
    if completions % world_size:
        raise ValueError(f"{completions} completions per step do not split evenly over {world_size} processes")
    share = completions // world_size
    per_device = max(d for d in range(1, min(share, micro_batch_size) + 1) if share % d == 0)
    return per_device, share // per_device


def unsupported(recipe) -> list[str]:
    """What of the recipe has no TRL GRPOTrainer equivalent in this mapping (empty when it maps)."""
    a, t = recipe.algorithm, recipe.train
    checks = {
        "engine.name must be hf": recipe.engine.name == "hf",
        "advantage must be grpo": a.advantage.name == "grpo",
        "advantage.std must be group": a.advantage.name != "grpo" or a.advantage.std == "group",
        "loss must be ppo_clip without dual_clip": a.loss.name == "ppo_clip" and getattr(a.loss, "dual_clip", None) is None,
        "aggregation must be token_mean": a.aggregation.name == "token_mean",
        "kl must be k3 in the loss": a.kl.coef == 0 or (a.kl.estimator == "k3" and not a.kl.in_reward),
        "entropy.coef must be 0": a.entropy.coef == 0 and a.entropy.target is None,
        "no filters, dynamic sampling or NPR": not a.zero_variance_filter and a.dynamic_sampling is None
        and a.no_positive_resampling is None,
        "no length shaping or thinking budget": a.length.overlong_buffer is None and a.length.thinking_budget is None,
        "no critic or TIS": a.critic is None and a.tis is None,
        "train.epochs and mini_batches must be 1": t.epochs == 1 and t.mini_batches == 1,
        "optimizer.schedule must be constant": recipe.optimizer.schedule == "constant",
        "async off": recipe.async_.max_off_policy_steps == 0,
    }
    return [k for k, ok in checks.items() if not ok]


def trl_config_kwargs(recipe, steps: int, output_dir: str) -> dict:
    """GRPOConfig keyword arguments equivalent to the recipe (see the module docstring)."""
    a, e, o = recipe.algorithm, recipe.engine, recipe.optimizer
    per_device, accumulation = trl_batch_shape(recipe.train.prompts_per_iteration, a.group_size,
                                               recipe.train.micro_batch_size)
    return dict(
        output_dir=output_dir, max_steps=steps, seed=recipe.seed,
        per_device_train_batch_size=per_device, gradient_accumulation_steps=accumulation,
        num_generations=a.group_size, num_iterations=1, shuffle_dataset=False,
        max_completion_length=e.max_new_tokens, temperature=e.temperature, top_p=e.top_p, top_k=e.top_k,
        use_vllm=False,
        loss_type="dapo", epsilon=a.loss.clip_low, epsilon_high=a.loss.clip_high,
        scale_rewards="group" if a.advantage.scale_by_std else "none", beta=a.kl.coef,
        mask_truncated_completions=a.length.mask_truncated,
        learning_rate=o.lr, optim="adamw_torch", adam_beta1=o.betas[0], adam_beta2=o.betas[1],
        adam_epsilon=o.eps, weight_decay=o.weight_decay, lr_scheduler_type="constant_with_warmup",
        warmup_steps=o.warmup_steps, max_grad_norm=o.max_grad_norm or 0.0,
        bf16=False, fp16=False, gradient_checkpointing=False, use_cpu=True,
        report_to=[], save_strategy="no", eval_strategy="no", logging_strategy="no", disable_tqdm=True,
        log_completions=False,
    )


def run_asymptote(recipe, steps: int) -> dict:
    from rl.trainer import Trainer

    trainer = Trainer(recipe)
    times, tokens, rewards = [], [], []
    try:
        for _ in range(steps):
            before = trainer.state.tokens
            t0 = time.perf_counter()
            metrics = trainer.train_iteration()
            trainer.logger.log(metrics)  # the metrics line its own loop writes every step
            times.append(time.perf_counter() - t0)
            tokens.append(trainer.state.tokens - before)
            rewards.append(metrics["train/reward"])
        assert trainer.state.step == steps, f"Asymptote took {trainer.state.step} optimizer steps in {steps} iterations"
    finally:
        trainer.close()
    return {"times": times, "tokens": tokens, "rewards": rewards}


def run_trl(recipe, start_path: Path, prompts: list, steps: int, output_dir: str) -> dict:
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer  # main() checked that TRL is installed
    from rewards import compute_rewards
    from rl.models import load_model, load_tokenizer
    from rl.rollout.judge import EngineJudge

    by_id = {p.id: p for p in prompts}
    tokens, rewards = [], []

    def asymptote_reward(prompts, completions, completion_ids, prompt_id, **kwargs) -> list[float]:
        # conversational prompts: each completion is [{"role": "assistant", "content": decoded text}]
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        result = compute_rewards(texts, [by_id[i] for i in prompt_id], recipe.reward, local_judge=EngineJudge)
        tokens.append(sum(len(ids) for ids in completion_ids))
        rewards.append(statistics.mean(result.total))
        return result.total

    class StepTimes(TrainerCallback):
        def __init__(self):
            self.marks = []

        def on_step_begin(self, args, state, control, **kw):
            if not self.marks:
                self.marks.append(time.perf_counter())

        def on_step_end(self, args, state, control, **kw):
            self.marks.append(time.perf_counter())

    dataset = Dataset.from_dict({"prompt": [list(p.messages) for p in prompts], "prompt_id": [p.id for p in prompts]})
    config = GRPOConfig(**trl_config_kwargs(recipe, steps, output_dir))
    clock = StepTimes()
    peft_config = None
    if recipe.model.lora is not None:
        from peft import LoraConfig

        lora = recipe.model.lora
        peft_config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                 target_modules=lora.target_modules, task_type="CAUSAL_LM")
    trainer = GRPOTrainer(
        model=load_model(start_path, recipe.model.dtype), reward_funcs=[asymptote_reward], args=config,
        train_dataset=dataset, processing_class=load_tokenizer(start_path), callbacks=[clock],
        peft_config=peft_config,
    )
    trainer.train()
    assert trainer.state.global_step == steps, f"TRL took {trainer.state.global_step} steps, asked {steps}"
    assert len(tokens) == steps, f"TRL generated {len(tokens)} times in {steps} steps"
    times = [b - a for a, b in zip(clock.marks, clock.marks[1:])]
    return {"times": times, "tokens": tokens, "rewards": rewards, "config": config}


def summary(run: dict) -> dict:
    t, n = run["times"], run["tokens"]
    rest_t, rest_n = (t[1:], n[1:]) if len(t) > 1 else (t, n)
    return {"first": t[0], "s_per_step": statistics.mean(rest_t), "tok_per_s": sum(rest_n) / sum(rest_t),
            "tokens": statistics.mean(n), "reward": statistics.mean(run["rewards"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--recipe", default=str(ROOT / "recipes/tiny/grpo_math.yaml"))
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    try:
        import trl
    except ImportError:
        raise SystemExit("bench/trl_grpo.py needs TRL: pip install trl (or pip install -e .[bench])") from None

    import torch

    from envs import make_env
    from rl.config import load_recipe
    from rl.models import build_tiny_model, load_tokenizer, render_prompt
    from rl.warm_start import ensure_warm_start

    with tempfile.TemporaryDirectory() as tmp:
        recipe = load_recipe(args.recipe, [
            f"logging.runs_dir={tmp}", "logging.progress=false", "eval.at_start=false", "name=bench-asymptote",
            f"train.iterations={args.steps}", f"eval.every={args.steps + 1}", f"checkpoint.every={args.steps + 1}",
            *args.overrides,
        ])
        problems = unsupported(recipe)
        if problems:
            raise SystemExit(f"recipe {recipe.name} has no TRL equivalent here: {'; '.join(problems)}")
        if not (Path(recipe.model.path) / "config.json").is_file():
            build_tiny_model(recipe.model.path, seed=recipe.seed)
        env = make_env(recipe.env, recipe.seed)
        start_path = ensure_warm_start(recipe, env, progress=False)  # the model both trainers start from
        prompts = env.train_prompts(0, args.steps * recipe.train.prompts_per_iteration)  # Asymptote's order
        env.close()
        tokenizer = load_tokenizer(start_path)
        # TRL renders the messages through the same tokenizer's chat template: the same ids
        assert tokenizer.apply_chat_template(list(prompts[0].messages), add_generation_prompt=True, tokenize=True,
                                             return_dict=True)["input_ids"] == render_prompt(tokenizer, prompts[0].messages)

        asy = summary(run_asymptote(recipe, args.steps))
        trl_run = run_trl(recipe, start_path, prompts, args.steps, str(Path(tmp) / "trl"))
        trl_s = summary(trl_run)

    c = trl_run["config"]
    a, e, o = recipe.algorithm, recipe.engine, recipe.optimizer
    print(f"model {start_path} ({recipe.model.dtype}), torch {torch.__version__}, trl {trl.__version__}, "
          f"torch threads {torch.get_num_threads()}")
    print(f"Asymptote: {recipe.train.prompts_per_iteration} prompts x group_size {a.group_size}, micro_batch "
          f"{recipe.train.micro_batch_size}, max_new_tokens {e.max_new_tokens}, T={e.temperature}, engine {e.name} "
          f"(batch {e.batch_size}), loss {a.loss.name} clip {a.loss.clip_low}/{a.loss.clip_high} {a.aggregation.name}, "
          f"adv {a.advantage.name} std={a.advantage.scale_by_std}, kl {a.kl.coef}, lr {o.lr} warmup {o.warmup_steps}, "
          f"max_grad_norm {o.max_grad_norm}, epochs {recipe.train.epochs} x mini_batches {recipe.train.mini_batches}")
    print(f"TRL:       per_device_train_batch_size {c.per_device_train_batch_size} x grad_accum "
          f"{c.gradient_accumulation_steps} (generation_batch_size {c.generation_batch_size}, steps_per_generation "
          f"{c.steps_per_generation}), num_generations {c.num_generations}, max_completion_length "
          f"{c.max_completion_length}, T={c.temperature}, use_vllm {c.use_vllm}, loss {c.loss_type} eps "
          f"{c.epsilon}/{c.epsilon_high}, scale_rewards {c.scale_rewards}, beta {c.beta}, lr {c.learning_rate} "
          f"{getattr(c.lr_scheduler_type, 'value', c.lr_scheduler_type)} warmup {c.warmup_steps}, max_grad_norm {c.max_grad_norm}, num_iterations "
          f"{c.num_iterations}, bf16 {c.bf16}, gradient_checkpointing {c.gradient_checkpointing}")
    print(f"\n{args.steps} optimizer steps each; s/step and tokens/s over steps 2..{args.steps}\n")
    print(f"{'trainer':<11}{'steps':>6}{'step 1 s':>10}{'s/step':>9}{'steps/s':>9}{'tokens/step':>13}"
          f"{'compl. tok/s':>14}{'reward':>8}")
    for name, s in (("Asymptote", asy), ("TRL", trl_s)):
        print(f"{name:<11}{args.steps:>6}{s['first']:>10.2f}{s['s_per_step']:>9.3f}{1 / s['s_per_step']:>9.3f}"
              f"{s['tokens']:>13.0f}{s['tok_per_s']:>14,.0f}{s['reward']:>8.3f}")
    print(f"Asymptote/TRL: steps/s x{trl_s['s_per_step'] / asy['s_per_step']:.2f}, "
          f"completion tokens/s x{asy['tok_per_s'] / trl_s['tok_per_s']:.2f}")


if __name__ == "__main__":
    main()
