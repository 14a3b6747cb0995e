"""verl runs: the JSONL of verl's file logger (``trainer.logger=['console','file']``).

Checked against verl 0.6.0 to 0.9.1 (verl/utils/tracking.py, ``FileLogger``): the file is
``$VERL_FILE_LOGGER_PATH``, else ``$VERL_FILE_LOGGER_ROOT/<project_name>/<experiment_name>.jsonl``,
opened for writing (a restarted run starts it again), one line per ``Tracking.log(data, step)``::

    {"step": 12, "data": {"actor/entropy": 0.41, "perf/total_num_tokens": 183296, ...}}

written with ``orjson.dumps`` from 0.8.0 on (compact, NaN as null), with ``json.dumps`` before
(spaces, NaN as NaN). Other keys beside ``step`` and ``data`` are kept. The PPO trainer
(verl/trainer/ppo/ray_trainer.py, ``fit``) logs the validation before training at step 0
(``val-core/<data_source>/<reward|acc>/mean@<n>``, ``val-aux/...``) and then, every step, the
training metrics (``critic/score/mean``, ``actor/entropy``, ``response_length/mean``,
``timing_s/step``, ``perf/total_num_tokens``, ``perf/time_per_step``, ``perf/throughput`` ...)
and, every ``test_freq`` steps, the validation in the same line.

Compute (verl/trainer/ppo/metric_utils.py, ``compute_throughout_metrics``):

* ``compute/tokens``: the cumulative sum of ``perf/total_num_tokens``, the batch's prompt +
  response tokens of each step;
* ``compute/device_hours``: the cumulative sum of ``timing_s/step`` (else ``perf/time_per_step``)
  x GPUs / 3600. The GPU count is ``gpus`` where given, else read from the log: verl computes
  ``perf/throughput = perf/total_num_tokens / (perf/time_per_step * n_gpus)``, so n_gpus is that
  ratio (rounded; the median over the steps). Where neither gives one, there is no
  ``compute/device_hours`` and the run's note says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from analysis.readers.base import Run, RunError, accumulate, json_lines, number

TOKENS = "perf/total_num_tokens"
SECONDS = ("timing_s/step", "perf/time_per_step")
THROUGHPUT = "perf/throughput"


def is_verl_line(obj: Any) -> bool:
    """One line of verl's file logger: ``{"step": N, "data": {...}}``."""
    return isinstance(obj, dict) and "step" in obj and isinstance(obj.get("data"), dict)


def read_verl(path: str | Path, gpus: int | None = None) -> Run:
    """A verl run from its file logger's JSONL; the run is named after the file (the experiment)."""
    path = Path(path)
    if not path.is_file():
        raise RunError(f"{path} is not a file; expected the .jsonl of verl's file logger")
    records: list[dict[str, Any]] = []
    for i, obj in json_lines(path, "verl's file logger writes one object a line"):
        if not is_verl_line(obj):
            raise RunError(
                f'{path}:{i} is not a line of verl\'s file logger: expected {{"step": N, "data": {{...}}}}, '
                f"got keys {', '.join(obj) if isinstance(obj, dict) else type(obj).__name__}"
            )
        rec = dict(obj["data"])
        rec.update({k: v for k, v in obj.items() if k != "data"})
        rec["_line"] = i
        records.append(rec)
    notes = verl_compute(records, gpus, where=str(path))
    return Run(name=path.stem, records=records, source=str(path), format="verl", notes=notes)


def gpus_from_log(records: list[dict[str, Any]]) -> int | None:
    """n_gpus as verl used it in ``perf/throughput``; None where the log lacks the three metrics or
    the ratio is not a whole number."""
    counts = [
        r[TOKENS] / (r["perf/time_per_step"] * r[THROUGHPUT])
        for r in records
        if all(number(r.get(k)) for k in (TOKENS, "perf/time_per_step", THROUGHPUT))
        and r["perf/time_per_step"] * r[THROUGHPUT] > 0
    ]
    if not counts:
        return None
    n = float(np.median(counts))
    return round(n) if round(n) >= 1 and abs(n - round(n)) < 0.01 * n else None


def verl_compute(records: list[dict[str, Any]], gpus: int | None, where: str) -> dict[str, str]:
    """Add ``compute/tokens`` and ``compute/device_hours`` to verl's records (in place); return the
    notes that say how, or why not."""
    notes: dict[str, str] = {}
    if accumulate(records, TOKENS, "compute/tokens"):
        notes["compute/tokens"] = f"cumulative {TOKENS} (verl: prompt + response tokens of each step's batch)"
    else:
        notes["compute/tokens"] = f"{where} has no {TOKENS}"
    seconds = next((k for k in SECONDS if any(number(r.get(k)) for r in records)), None)
    logged = gpus_from_log(records)
    if seconds is None:
        notes["compute/device_hours"] = f"{where} has no {' or '.join(SECONDS)}, so no device-hours"
    elif gpus is None and logged is None:
        notes["compute/device_hours"] = (
            f"{where} has {seconds} but does not say how many GPUs ran it (no {THROUGHPUT} to read n_gpus from); "
            "pass --gpus N (gpus= in Python) for compute/device_hours"
        )
    else:
        n = gpus if gpus is not None else logged
        origin = "given" if gpus is not None else f"read from {THROUGHPUT}"
        if gpus is not None and logged is not None and logged != gpus:
            origin += f"; the log's {THROUGHPUT} says {logged}"
        accumulate(records, seconds, "compute/device_hours", scale=n / 3600)
        notes["compute/device_hours"] = f"cumulative {seconds} x {n} GPUs ({origin}) / 3600"
    return notes
