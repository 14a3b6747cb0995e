"""Live prediction and the sweep stopping rule (analysis/live.py)."""

from analysis.bootstrap import Interval
from analysis.live import LivePredictor, should_stop
from analysis.readers import read_run_dir
from synthetic_runs import write_run_dir


def history(committed_run):
    return [{k: v for k, v in r.items() if k != "_line"} for r in read_run_dir(committed_run).records]


def test_predicts_with_an_interval(committed_run):
    # (its cost at every eval is a benchmark's matter, not a timed test's: it failed under CI-like load)
    out = LivePredictor().update(history(committed_run))
    assert {"pred/asymptote", "pred/asymptote_low", "pred/asymptote_high", "pred/identified"} <= set(out)
    assert out["pred/asymptote_low"] <= out["pred/asymptote"] <= out["pred/asymptote_high"]
    assert 0.55 < out["pred/asymptote"] < 0.7
    assert all(k.startswith("pred/") and isinstance(v, float) for k, v in out.items())


def test_nothing_while_too_few_evals(committed_run):
    hist = history(committed_run)
    assert LivePredictor().update(hist[:10]) == {}  # 5 evals
    assert LivePredictor().update([]) == {}


def test_never_raises_on_bad_or_flat_data():
    flat = [{"step": i, "compute/flops": 1e13 * i, "val/accuracy": 0.5} for i in range(20)]
    assert LivePredictor().update(flat) == {}
    junk = [{"step": i, "compute/flops": "x", "val/accuracy": None} for i in range(20)]
    junk += [{"step": 99, "compute/flops": float("nan"), "val/accuracy": 0.3}]
    assert LivePredictor().update(junk) == {}
    hours_only = [{"step": i, "compute/device_hours": 0.01 * i, "val/accuracy": 0.1 + 0.05 * i} for i in range(20)]
    assert LivePredictor().update(hours_only) == {}  # no compute/flops: no points on the default axis
    rising = [{"compute/flops": 1e13 * i, "val/accuracy": 0.1 + 0.01 * i} for i in range(12)]
    out = LivePredictor().update(rising)  # a straight line: no bend yet
    assert out == {} or out["pred/identified"] == 0.0


def test_fits_flops_by_default_so_a_busy_machine_does_not_move_the_prediction(tmp_path):
    """The sweep stops arms on pred/asymptote: it must not depend on the machine's load. Two
    histories, identical but for device-hours stretched 15x over the first third (a busy neighbour)."""
    kw = dict(sigmoid_in="compute/flops", C_mid=0.015 * 3.1e15, steps=60)
    calm = history(write_run_dir(tmp_path, "calm", **kw))
    busy = history(write_run_dir(tmp_path, "busy", slowdown=lambda step: 15.0 if step <= 20 else 1.0, **kw))
    assert [h["compute/device_hours"] for h in calm] != [h["compute/device_hours"] for h in busy]
    assert LivePredictor().x_key == "compute/flops"
    out = LivePredictor().update(calm)
    assert out and out == LivePredictor().update(busy)
    assert 0.55 < out["pred/asymptote"] < 0.7
    by_hours = LivePredictor(x_key="compute/device_hours")
    assert by_hours.update(calm)["pred/C_mid"] != by_hours.update(busy)["pred/C_mid"]


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


def test_predicts_under_a_prior_file(committed_run, tmp_path):
    """With a prior (recipe key eval.prior), the live prediction fits the creep law under it, from the
    same history, and logs the same pred/ keys the sweep's early stopping reads."""
    import numpy as np

    from analysis.prior import Curve, build_prior

    curves = []
    for i, fam in enumerate(("a", "a", "b", "b")):
        run = read_run_dir(write_run_dir(tmp_path, f"{fam}-s{i}", seed=i, sigmoid_in="compute/flops", C_mid=3e13,
                                         steps=120, eval_every=3, pred_lines=False))
        rec = [r for r in run.records if "val/accuracy" in r]
        curves.append(Curve(run.name, fam, np.array([r["compute/flops"] for r in rec]),
                            np.array([r["val/accuracy"] for r in rec]), None))
    path = build_prior(curves, n_iter=2).save(tmp_path / "prior.json")
    hist = history(committed_run)
    out = LivePredictor(prior_path=str(path), n_boot=60).update(hist)
    assert {"pred/asymptote", "pred/asymptote_low", "pred/asymptote_high", "pred/identified"} <= set(out)
    assert out["pred/asymptote_low"] <= out["pred/asymptote"] <= out["pred/asymptote_high"]
    assert 0.5 < out["pred/asymptote"] < 0.8
    assert LivePredictor(prior_path=str(tmp_path / "missing.json")).update(hist) == {}  # never raises
