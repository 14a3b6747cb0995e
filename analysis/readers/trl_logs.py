"""TRL runs (any transformers ``Trainer``'s): the ``log_history`` of ``trainer_state.json``.

Checked with transformers 5.19 and TRL 1.16. ``Trainer.log`` appends every logged dict, with
``"step": state.global_step``, to ``state.log_history``; ``TrainerState.save_to_json`` writes it to
``checkpoint-N/trainer_state.json`` at every save (and to the output directory's own
``trainer_state.json`` where the script calls ``trainer.save_state()``). TRL's ``GRPOTrainer.log``
(trl/trainer/grpo_trainer.py) adds its metrics: in training ``num_tokens`` (cumulative prompt +
completion tokens, ``state.num_input_tokens_seen``), ``reward``, ``reward_std``, ``entropy``,
``kl``, ``completions/mean_length``, ``rewards/<func>/mean`` ...; in evaluation the same names with
``eval_`` in front (``eval_reward``, ``eval_num_tokens``, ``eval_rewards/<func>/mean``), in a
record of their own at the same step.

Records of one step are joined into one line; then

* ``compute/tokens`` = ``num_tokens`` (else ``eval_num_tokens``, else the Trainer's own
  ``num_input_tokens_seen``): TRL's cumulative token count;
* ``train/reward`` = ``reward`` and ``train/entropy`` = ``entropy`` (Asymptote's names, which the
  entropy law reads); every other key is kept as TRL wrote it, so ``--y eval_reward`` fits TRL's
  eval reward. There is no ``compute/device_hours``: log_history has no per-step wall time.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from analysis.readers.base import Run, RunError, number

TOKEN_KEYS = ("num_tokens", "eval_num_tokens", "num_input_tokens_seen")
ALIASES = {"reward": "train/reward", "entropy": "train/entropy"}


def find_trainer_state(path: str | Path) -> Path:
    """``path`` itself (a file), ``path/trainer_state.json``, or else the newest checkpoint's:
    ``path/checkpoint-N/trainer_state.json`` with the largest N."""
    path = Path(path)
    if path.is_file():
        return path
    if (path / "trainer_state.json").is_file():
        return path / "trainer_state.json"
    checkpoints = [
        (int(m.group(1)), c / "trainer_state.json")
        for c in path.glob("checkpoint-*")
        if (m := re.fullmatch(r"checkpoint-(\d+)", c.name)) and (c / "trainer_state.json").is_file()
    ]
    if not checkpoints:
        raise RunError(
            f"{path} has no trainer_state.json and no checkpoint-*/trainer_state.json; expected a TRL / "
            "transformers output directory"
        )
    return max(checkpoints)[1]


def is_trainer_state(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("log_history"), list)


def trl_records(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """log_history's records joined by ``step`` (in the order logged), with Asymptote's names added."""
    by_step: dict[Any, dict[str, Any]] = {}
    for entry in log_history:
        by_step.setdefault(entry.get("step"), {}).update(entry)
    records = list(by_step.values())
    for rec in records:
        tokens = next((rec[k] for k in TOKEN_KEYS if number(rec.get(k))), None)
        if tokens is not None:
            rec["compute/tokens"] = tokens
        for trl_name, name in ALIASES.items():
            if trl_name in rec and name not in rec:
                rec[name] = rec[trl_name]
    return records


def read_trl(path: str | Path) -> Run:
    """A TRL run: an output directory, a ``checkpoint-N`` directory or a ``trainer_state.json``.

    The run is named after the output directory. trainer_state.json holds no training arguments
    (those are in ``training_args.bin``, a pickle, not read), so the run's recipe is empty and it is
    fitted on its own, not pooled with others.
    """
    file = find_trainer_state(path)
    try:
        data = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunError(f"{file} is not JSON ({e}); expected a transformers trainer_state.json") from None
    if not is_trainer_state(data):
        raise RunError(f"{file} has no 'log_history' list; expected a transformers / TRL trainer_state.json")
    records = trl_records(data["log_history"])
    if any("compute/tokens" in r for r in records):
        notes = {"compute/tokens": "TRL's num_tokens: cumulative prompt + completion tokens"}
    else:
        notes = {
            "compute/tokens": "this trainer_state.json's log_history has no num_tokens (TRL's GRPOTrainer logs it; "
            "other Trainers with include_num_input_tokens_seen); fit against --x step"
        }
    notes["compute/device_hours"] = "TRL's log_history has no per-step wall time, so no device-hours"
    owner = file.parent.parent if file.parent.name.startswith("checkpoint-") else file.parent
    return Run(name=owner.name, records=records, source=str(file), format="trl", notes=notes)
