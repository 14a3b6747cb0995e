"""TensorBoard event files, read with the ``tensorboard`` package's ``EventAccumulator`` (checked with
tensorboard 2.21; an optional extra: ``pip install 'asymptote[tensorboard]'``).

A run is one directory of ``events.out.tfevents.*`` files (or one such file): its scalars by tag,
joined by step into one record per step (a tag logged twice at one step keeps the last value).
Scalars written as tensors (TensorFlow 2's summaries, plugin ``scalars``) are read too. The tags
keep their names; which framework wrote them decides how compute is derived:

* verl (``trainer.logger=['tensorboard']``; verl/utils/tracking.py ``_TensorboardAdapter`` writes
  every metric under its own name): as from verl's file logger (:mod:`analysis.readers.verl_logs`);
* OpenRLHF 0.11 (openrlhf/utils/logging_utils.py ``TensorboardLogger``: ``train/<metric>``,
  ``eval/<metric>``): ``compute/tokens`` = cumulative ``train/rollout/num_samples`` x
  ``train/rollout/response_length_mean`` (generated tokens), ``compute/device_hours`` = cumulative
  ``train/timing/step_total`` x ``gpus`` / 3600 (OpenRLHF does not log its GPU count: pass it);
* TRL / transformers (``TensorBoardCallback``: ``train/<key>``, ``eval/<key>`` for ``eval_<key>``):
  ``compute/tokens`` = ``train/num_tokens``, else ``eval/num_tokens``;
* tags that already use Asymptote's names (``compute/...``) are read as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from analysis.readers.base import Run, RunError, accumulate, number
from analysis.readers.verl_logs import verl_compute

INSTALL = "pip install 'asymptote[tensorboard]'"
OPENRLHF_SAMPLES, OPENRLHF_LENGTH = "train/rollout/num_samples", "train/rollout/response_length_mean"
OPENRLHF_SECONDS = "train/timing/step_total"


def event_files(path: Path) -> list[Path]:
    return [path] if path.is_file() else sorted(path.glob("events.out.tfevents.*"))


def is_event_file(path: Path) -> bool:
    """A TFRecord whose first record is an Event with ``file_version: "brain.Event:..."``."""
    with path.open("rb") as f:
        return b"brain.Event:" in f.read(128)


def _scalars(path: Path) -> dict[int, dict[str, Any]]:
    try:
        from tensorboard.backend.event_processing import event_accumulator as ea
        from tensorboard.util import tensor_util
    except ImportError:
        raise RunError(f"{path} is a TensorBoard log; reading it needs the tensorboard package: {INSTALL}") from None
    acc = ea.EventAccumulator(str(path), size_guidance={ea.SCALARS: 0, ea.TENSORS: 0})
    acc.Reload()
    by_step: dict[int, dict[str, Any]] = {}
    tags = acc.Tags()
    for tag in tags.get("scalars", []):
        for ev in acc.Scalars(tag):
            by_step.setdefault(ev.step, {"step": ev.step})[tag] = float(ev.value)
    for tag in tags.get("tensors", []):
        if acc.SummaryMetadata(tag).plugin_data.plugin_name != "scalars":
            continue
        for ev in acc.Tensors(tag):
            value = tensor_util.make_ndarray(ev.tensor_proto)
            if value.size == 1:
                by_step.setdefault(ev.step, {"step": ev.step})[tag] = float(value.reshape(()))
    return by_step


def read_tensorboard(path: str | Path, gpus: int | None = None) -> Run:
    """One run from a directory of event files (or one event file), named after the directory."""
    path = Path(path)
    if not path.exists() or not event_files(path):
        raise RunError(f"{path} has no TensorBoard event files (events.out.tfevents.*)")
    by_step = _scalars(path)
    if not by_step:
        raise RunError(f"{path} holds no scalars (TensorBoard tags with numbers)")
    records = [by_step[s] for s in sorted(by_step)]
    notes = framework_compute(records, gpus, where=str(path))
    run_dir = path.parent if path.is_file() else path
    return Run(name=run_dir.name, records=records, source=str(path), format="tensorboard", notes=notes)


def framework_compute(records: list[dict[str, Any]], gpus: int | None, where: str) -> dict[str, str]:
    """Add compute/tokens (and device-hours where possible) from the tags of the framework that
    wrote them (module doc), in place; return the notes that say how, or why not."""
    tags = {k for r in records for k in r}
    if any(t.startswith("compute/") for t in tags):  # Asymptote's own names: nothing to derive
        return {}
    if tags & {"perf/total_num_tokens", "timing_s/step", "perf/time_per_step"}:
        return verl_compute(records, gpus, where)
    if tags & {OPENRLHF_SAMPLES, OPENRLHF_SECONDS}:
        return _openrlhf_compute(records, gpus, where)
    for key in ("train/num_tokens", "eval/num_tokens"):
        if key in tags:
            for r in records:
                tokens = r.get("train/num_tokens", r.get("eval/num_tokens"))
                if number(tokens):
                    r["compute/tokens"] = tokens
            return {"compute/tokens": f"TRL's {key} (cumulative prompt + completion tokens)"}
    return {
        "compute/tokens": f"{where} has no token counts among its tags (verl's perf/total_num_tokens, "
        "OpenRLHF's train/rollout/*, TRL's train/num_tokens); fit against --x step"
    }


def _openrlhf_compute(records: list[dict[str, Any]], gpus: int | None, where: str) -> dict[str, str]:
    notes = {}
    for r in records:
        if number(r.get(OPENRLHF_SAMPLES)) and number(r.get(OPENRLHF_LENGTH)):
            r["_tokens"] = r[OPENRLHF_SAMPLES] * r[OPENRLHF_LENGTH]
    if accumulate(records, "_tokens", "compute/tokens"):
        notes["compute/tokens"] = f"cumulative {OPENRLHF_SAMPLES} x {OPENRLHF_LENGTH} (generated tokens)"
    if gpus is None:
        notes["compute/device_hours"] = (
            f"{where} (OpenRLHF) does not log how many GPUs ran it; pass --gpus N (gpus= in Python) for "
            "compute/device_hours"
        )
    elif accumulate(records, OPENRLHF_SECONDS, "compute/device_hours", scale=gpus / 3600):
        notes["compute/device_hours"] = f"cumulative {OPENRLHF_SECONDS} x {gpus} GPUs (given) / 3600"
    return notes
