"""Live prediction and the sweep stopping rule (analysis/live.py)."""

import time


from analysis.bootstrap import Interval
from analysis.live import LivePredictor, should_stop
from analysis.readers import read_run_dir


def history(committed_run):
    return [{k: v for k, v in r.items() if k != "_line"} for r in read_run_dir(committed_run).records]


def test_predicts_with_an_interval_quickly(committed_run):
    hist = history(committed_run)
    t0 = time.perf_counter()
    out = LivePredictor().update(hist)
    elapsed = time.perf_counter() - t0
    assert elapsed < 2.0, elapsed  # called at every eval inside the training loop
    assert {"pred/asymptote", "pred/asymptote_low", "pred/asymptote_high", "pred/identified"} <= set(out)
    assert out["pred/asymptote_low"] <= out["pred/asymptote"] <= out["pred/asymptote_high"]
    assert 0.55 < out["pred/asymptote"] < 0.7
    assert all(k.startswith("pred/") and isinstance(v, float) for k, v in out.items())


def test_nothing_while_too_few_evals(committed_run):
    hist = history(committed_run)
    assert LivePredictor().update(hist[:10]) == {}  # 5 evals
    assert LivePredictor().update([]) == {}


def test_never_raises_on_bad_or_flat_data():
    flat = [{"step": i, "compute/device_hours": 0.01 * i, "val/accuracy": 0.5} for i in range(20)]
    assert LivePredictor().update(flat) == {}
    junk = [{"step": i, "compute/device_hours": "x", "val/accuracy": None} for i in range(20)]
    junk += [{"step": 99, "compute/device_hours": float("nan"), "val/accuracy": 0.3}]
    assert LivePredictor().update(junk) == {}
    rising = [{"compute/device_hours": 0.01 * i, "val/accuracy": 0.1 + 0.01 * i} for i in range(12)]
    out = LivePredictor().update(rising)  # a straight line: no bend yet
    assert out == {} or out["pred/identified"] == 0.0


def test_should_stop():
    arms = {
        "best": Interval(0.70, 0.66, 0.74),
        "close": Interval(0.66, 0.60, 0.70),  # overlaps the best: keep
        "bad": Interval(0.55, 0.50, 0.65),  # 0.65 < 0.66: stop
        "new": None,  # no interval yet: keep
    }
    assert should_stop(arms) == {"bad"}
    assert should_stop(arms, margin=0.02) == set()  # 0.65 + 0.02 >= 0.66
    assert should_stop({"only": Interval(0.5, 0.4, 0.6)}) == set()
