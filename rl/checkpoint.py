"""Atomic checkpoints in runs/<name>/checkpoints/.

A checkpoint is written to a temporary directory and renamed into place only when complete, then
`latest` (a symlink) is switched to it with an atomic rename. A crash at any moment leaves either
the old or the new checkpoint as `latest`, never a half-written one. Model, optimizer, scheduler and
RNG states are saved by accelerate (`save_state`, which also handles sharded DeepSpeed/FSDP states);
the trainer's own counters go to trainer_state.json beside them.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATE_FILE = "trainer_state.json"


@dataclass
class TrainerState:
    """Everything besides tensors that a resumed run needs to continue exactly."""

    iteration: int = 0
    """Rollout batches trained on."""
    step: int = 0
    """Optimizer steps taken (also the policy version)."""
    data_position: int = 0
    """Position of the next prompt in the environment's training stream."""
    device_hours: float = 0.0
    flops: float = 0.0
    tokens: int = 0
    extra: dict = field(default_factory=dict)
    """Components' own resumable state (e.g. curricula)."""


def checkpoint_name(iteration: int) -> str:
    return f"iter_{iteration:07d}"


def save_checkpoint(ckpt_dir: Path, state: TrainerState, save_tensors, keep_last: int,
                    main: bool = True, barrier=None) -> Path:
    """Write a complete checkpoint for `state.iteration` and point `latest` at it.

    `save_tensors(path)` writes the model/optimizer/scheduler/RNG states into `path` (the trainer
    passes accelerator.save_state). With several processes every rank calls this: all of them
    write their tensors into one temporary directory, and the `main` one, after `barrier()`,
    completes the checkpoint."""
    barrier = barrier or (lambda: None)
    final = ckpt_dir / checkpoint_name(state.iteration)
    # one name for every rank of a job (torchrun's TORCHELASTIC_RUN_ID), else this process's
    tmp = ckpt_dir / f".tmp-{final.name}-{os.environ.get('TORCHELASTIC_RUN_ID', os.getpid())}"
    if main:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
    barrier()
    save_tensors(tmp)
    barrier()
    if not main:
        barrier()
        return final
    (tmp / STATE_FILE).write_text(json.dumps(asdict(state), indent=1))
    if final.exists():  # re-saving the same iteration (e.g. after a resume): replace it
        shutil.rmtree(final)
    os.rename(tmp, final)

    link_tmp = ckpt_dir / f".latest-{os.getpid()}"
    if link_tmp.is_symlink() or link_tmp.exists():
        link_tmp.unlink()
    os.symlink(final.name, link_tmp)
    os.replace(link_tmp, ckpt_dir / "latest")

    complete = sorted(p for p in ckpt_dir.iterdir() if p.is_dir() and p.name.startswith("iter_") and not p.is_symlink())
    for old in complete[:-keep_last]:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    for stale in ckpt_dir.glob(".tmp-*"):  # left by a run killed mid-save
        if stale != tmp:
            shutil.rmtree(stale, ignore_errors=True)
    barrier()
    return final


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    """The newest complete checkpoint, or None."""
    link = ckpt_dir / "latest"
    if link.is_symlink() or link.exists():
        target = link.resolve()
        if (target / STATE_FILE).is_file():
            return target
    # no valid link (e.g. the run was killed between rename and link): the newest complete directory
    complete = sorted(p for p in ckpt_dir.glob("iter_*") if (p / STATE_FILE).is_file()) if ckpt_dir.is_dir() else []
    return complete[-1] if complete else None


def load_trainer_state(path: Path) -> TrainerState:
    return TrainerState(**json.loads((path / STATE_FILE).read_text()))
