"""Readers of other frameworks' logs (analysis/readers/): TRL, verl, TensorBoard (verl, OpenRLHF, TRL)
and wandb offline runs, each written the way the framework writes it, with a known sigmoid that
``asymptote fit`` must recover; detection from content, --format, and the errors."""

import argparse
import json
import os
import sys

import numpy as np
import pytest

from analysis.cli import register
from analysis.laws import sigmoid
from analysis.readers import FORMATS, RunError, detect, load_runs, series

A, B, R0 = 0.7, 1.6, 0.1
STEPS, EVERY, GPUS = 120, 4, 8
VERL_Y = "val-core/openai/gsm8k/acc/mean@1"


class Curve:
    """A run's truth: tokens per step (jittered batch sizes), their cumulative sum, and the eval at
    every EVERY-th step (step 0 included): ScaleRL's sigmoid in cumulative tokens plus noise."""

    def __init__(self, seed=0, tokens_per_step=2e5, sd=0.01):
        rng = np.random.default_rng(seed)
        self.per_step = np.round(tokens_per_step * np.clip(1 + 0.1 * rng.standard_normal(STEPS + 1), 0.5, 1.5))
        self.per_step[0] = 0  # step 0 is the eval before training
        self.cum = np.cumsum(self.per_step)  # cum[s]: tokens after step s
        self.seconds = np.round(30 * np.clip(1 + 0.2 * rng.standard_normal(STEPS + 1), 0.5, 1.5), 3)
        self.seconds[0] = 0
        self.C_mid = float(self.cum[20])
        mean = sigmoid(np.maximum(self.cum, 1e-9), A=A, B=B, C_mid=self.C_mid, R0=R0)
        self.y = np.clip(mean + sd * rng.standard_normal(STEPS + 1), 0, 1)
        self.train_reward = np.clip(mean + 0.05 * rng.standard_normal(STEPS + 1), 0, 1)
        self.entropy = 0.4 + 0.8 * np.exp(-np.arange(STEPS + 1) / 30)

    def evals(self):
        return range(0, STEPS + 1, EVERY)


def run_cli(*argv):
    parser = argparse.ArgumentParser(prog="asymptote")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([str(a) for a in argv])
    return args.func(args)


def fit_A(tmp_path, *argv):
    """``asymptote fit ARGV`` (100 refits, no plots); the fit of record's x-axis and A."""
    out = tmp_path / "fit-out"
    assert run_cli("fit", *argv, "--out", out, "--boot", "100", "--no-plots") == 0
    (cf,) = json.loads((out / "fit.json").read_text())["fits"]
    return cf["x"], cf["params"]["A"]


def assert_recovers_A(a):
    assert a["low"] <= A <= a["high"], a
    assert abs(a["value"] - A) < 0.04, a


# --------------------------------------------------------------------------------------------
# TRL: transformers' TrainerState, log_history shaped as TRL 1.16's GRPOTrainer logs it
# --------------------------------------------------------------------------------------------


def trl_log_history(c: Curve) -> list[dict]:
    """What ``Trainer.log`` appends (``{**logs, "step": global_step}``, transformers 5.19) for
    GRPOTrainer.log's metrics (trl 1.16 grpo_trainer.py: num_tokens, reward, entropy, ...; in eval
    mode the same keys with ``eval_`` in front, then Trainer.evaluate's eval_loss / eval_runtime)."""
    history = []
    for s in range(STEPS + 1):
        epoch = s / STEPS
        if s:  # logging_steps = 1
            history.append({
                "loss": 0.01, "grad_norm": 0.5, "learning_rate": 1e-6, "num_tokens": float(c.cum[s]),
                "completions/mean_length": 180.0, "completions/clipped_ratio": 0.0,
                "rewards/accuracy_reward/mean": float(c.train_reward[s]), "rewards/accuracy_reward/std": 0.4,
                "reward": float(c.train_reward[s]), "reward_std": 0.4, "frac_reward_zero_std": 0.1,
                "kl": 0.0, "entropy": float(c.entropy[s]), "clip_ratio/region_mean": 0.0,
                "epoch": epoch, "step": s,
            })
        if s % EVERY == 0:  # eval_steps = EVERY, eval_on_start
            history.append({
                "eval_loss": 0.0, "eval_num_tokens": float(c.cum[s]), "eval_completions/mean_length": 175.0,
                "eval_rewards/accuracy_reward/mean": float(c.y[s]), "eval_reward": float(c.y[s]),
                "eval_reward_std": 0.45, "eval_entropy": float(c.entropy[s]), "eval_runtime": 12.5,
                "eval_samples_per_second": 10.2, "eval_steps_per_second": 1.3, "epoch": epoch, "step": s,
            })
    return history


def write_trl(out_dir, c: Curve, save_steps=40, top_level=False):
    """checkpoint-N/trainer_state.json every save_steps, as Trainer._save_checkpoint writes them."""
    from transformers import TrainerState

    history = trl_log_history(c)
    for n in range(save_steps, STEPS + 1, save_steps):
        ckpt = out_dir / f"checkpoint-{n}"
        ckpt.mkdir(parents=True)
        state = TrainerState(global_step=n, max_steps=STEPS, logging_steps=1, eval_steps=EVERY, save_steps=save_steps,
                             log_history=[h for h in history if h["step"] <= n])
        state.save_to_json(str(ckpt / "trainer_state.json"))
    if top_level:
        TrainerState(global_step=STEPS, log_history=history).save_to_json(str(out_dir / "trainer_state.json"))
    return out_dir


def test_trl_output_dir_reads_the_newest_checkpoint_and_fit_recovers_A(tmp_path):
    c = Curve(seed=1)
    out = write_trl(tmp_path / "grpo-out", c)  # checkpoint-40, -80, -120: "80" > "120" as text
    assert detect(out) == "trl"
    (run,) = load_runs([str(out)])
    assert run.name == "grpo-out" and run.format == "trl" and run.source.endswith("checkpoint-120/trainer_state.json")
    x, y = series(run, "compute/tokens", "eval_reward")
    assert x.size == len(c.evals()) and x[-1] == c.cum[STEPS]  # every eval, up to the last step
    np.testing.assert_allclose(x, c.cum[list(c.evals())])
    np.testing.assert_allclose(y, c.y[list(c.evals())])
    line = next(r for r in run.records if r["step"] == 8)  # the train and eval records of step 8, joined
    assert line["train/entropy"] == line["entropy"] == pytest.approx(c.entropy[8]) and "eval_loss" in line
    x_key, a = fit_A(tmp_path, out, "--y", "eval_reward")
    assert x_key == "compute/tokens"  # no FLOPs in TRL's logs: the default axis falls back to tokens
    assert_recovers_A(a)


def test_trl_trainer_state_file_and_top_level_state(tmp_path):
    c = Curve(seed=1)
    out = write_trl(tmp_path / "grpo-out", c, top_level=True)
    copy = tmp_path / "state.txt"  # content, not the name, says what it is
    copy.write_text((out / "checkpoint-80" / "trainer_state.json").read_text())
    assert detect(copy) == "trl"
    assert max(r["step"] for r in load_runs([str(copy)])[0].records) == 80
    assert load_runs([str(out)])[0].source == str(out / "trainer_state.json")


# --------------------------------------------------------------------------------------------
# verl: its file logger's JSONL
# --------------------------------------------------------------------------------------------


class VerlFileLogger:
    """verl's ``FileLogger``, as in verl 0.9.1 verl/utils/tracking.py lines 529-548 (0.8.0 on: orjson;
    ``json_dumps=True``: 0.6.0-0.7.x, ``self.fp.write(json.dumps(data) + "\\n")`` on a text file)."""

    def __init__(self, project_name, experiment_name, json_dumps=False):
        self.json_dumps = json_dumps
        self.filepath = os.getenv("VERL_FILE_LOGGER_PATH", None)
        if self.filepath is None:
            root_path = os.path.expanduser(os.getenv("VERL_FILE_LOGGER_ROOT", "."))
            directory = os.path.join(root_path, project_name)
            os.makedirs(directory, exist_ok=True)
            self.filepath = os.path.join(directory, f"{experiment_name}.jsonl")
        self.fp = open(self.filepath, "w" if json_dumps else "wb", buffering=-1 if json_dumps else 0)

    def log(self, data, step):
        data = {"step": step, "data": data}
        if self.json_dumps:
            self.fp.write(json.dumps(data) + "\n")
        else:
            import orjson

            self.fp.write(orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n")

    def finish(self):
        self.fp.close()


def verl_metrics(c: Curve, throughput=True):
    """(step, metrics) as verl 0.9.1's RayPPOTrainer.fit logs them: validation before training at
    step 0, then every step the training metrics (metric_utils.compute_data_metrics /
    compute_timing_metrics / compute_throughout_metrics), the validation merged in every test_freq."""
    for s in range(STEPS + 1):
        data = {}
        if s % EVERY == 0:  # _val_metrics_update: val-core for the core variable at the largest n
            data |= {VERL_Y: np.float64(c.y[s]), "val-aux/openai/gsm8k/reward/mean@1": np.float64(c.y[s])}
        if s:
            t, tokens = float(c.seconds[s]), int(c.per_step[s])
            data |= {
                "actor/entropy": float(c.entropy[s]), "actor/pg_loss": -0.01, "actor/grad_norm": 0.3,
                "training/global_step": s, "training/epoch": 0,
                "critic/score/mean": float(c.train_reward[s]), "critic/rewards/mean": float(c.train_reward[s]),
                "critic/values/mean": float("nan") if s == 1 else 0.2,  # NaN when the response mask is empty
                "response_length/mean": 190.0, "prompt_length/mean": 110.0,
                "timing_s/gen": 0.6 * t, "timing_s/update_actor": 0.3 * t, "timing_s/step": t,
                "perf/total_num_tokens": tokens, "perf/time_per_step": t,
            }
            if throughput:
                data["perf/throughput"] = tokens / (t * GPUS)
        yield s, data


def write_verl(tmp_path, monkeypatch, c, experiment="qwen-grpo", throughput=True, json_dumps=False):
    monkeypatch.setenv("VERL_FILE_LOGGER_ROOT", str(tmp_path / "verl-logs"))
    logger = VerlFileLogger("gsm8k", experiment, json_dumps=json_dumps)
    for step, data in verl_metrics(c, throughput):
        logger.log(data, step)
    logger.finish()
    return tmp_path / "verl-logs" / "gsm8k" / f"{experiment}.jsonl"


def test_verl_jsonl_compute_and_fit(tmp_path, monkeypatch):
    pytest.importorskip("orjson")
    c = Curve(seed=2)
    path = write_verl(tmp_path, monkeypatch, c)
    assert path.read_bytes().startswith(b'{"step":0,"data":{"val-core/')  # orjson: compact
    assert detect(path) == "verl"
    (run,) = load_runs([str(path)])
    assert run.name == "qwen-grpo" and run.format == "verl"
    x, y = series(run, "compute/tokens", VERL_Y)
    np.testing.assert_allclose(x, c.cum[list(c.evals())])
    hours, _ = series(run, "compute/device_hours", VERL_Y)
    np.testing.assert_allclose(hours, np.cumsum(c.seconds)[list(c.evals())] * GPUS / 3600)
    assert "8 GPUs (read from perf/throughput)" in run.notes["compute/device_hours"]
    assert run.records[1]["critic/values/mean"] is None  # orjson writes NaN as null
    x_key, a = fit_A(tmp_path, path, "--y", VERL_Y)
    assert x_key == "compute/tokens"
    assert_recovers_A(a)


def test_verl_before_orjson_and_a_folder_of_experiments(tmp_path, monkeypatch):
    c = Curve(seed=2)
    write_verl(tmp_path, monkeypatch, c, experiment="a", json_dumps=True)
    write_verl(tmp_path, monkeypatch, Curve(seed=3), experiment="b", json_dumps=True)
    project = tmp_path / "verl-logs" / "gsm8k"
    assert (project / "a.jsonl").read_text().startswith('{"step": 0, "data": {"val-core/')
    runs = load_runs([str(project)])
    assert [r.name for r in runs] == ["a", "b"] and {r.format for r in runs} == {"verl"}
    x, _ = series(runs[0], "compute/tokens", VERL_Y)
    np.testing.assert_allclose(x, c.cum[list(c.evals())])
    assert np.isnan(runs[0].records[1]["critic/values/mean"])  # json.dumps wrote NaN


def test_verl_without_gpu_count_says_so_and_gpus_gives_it(tmp_path, monkeypatch, capsys):
    c = Curve(seed=2)
    path = write_verl(tmp_path, monkeypatch, c, throughput=False, json_dumps=True)
    (run,) = load_runs([str(path)])
    with pytest.raises(RunError, match=r"does not say how many GPUs ran it .*pass --gpus N"):
        series(run, "compute/device_hours", VERL_Y)
    out = tmp_path / "out"
    argv = ["--y", VERL_Y, "--out", out, "--boot", "20", "--no-plots"]
    assert run_cli("fit", path, "--x", "compute/device_hours", *argv) == 2
    assert "pass --gpus N" in capsys.readouterr().err
    assert run_cli("predict", path, "--at-hours", "1", *argv) == 2
    assert "pass --gpus N" in capsys.readouterr().err
    (run,) = load_runs([str(path)], gpus=4)
    hours, _ = series(run, "compute/device_hours", VERL_Y)
    np.testing.assert_allclose(hours, np.cumsum(c.seconds)[list(c.evals())] * 4 / 3600)
    assert run_cli("fit", path, "--gpus", "4", "--x", "compute/device_hours", *argv) == 0


def test_gpus_given_beside_the_logged_count(tmp_path, monkeypatch):
    path = write_verl(tmp_path, monkeypatch, Curve(seed=2), json_dumps=True)
    (run,) = load_runs([str(path)], gpus=2)
    assert run.notes["compute/device_hours"].endswith("x 2 GPUs (given; the log's perf/throughput says 8) / 3600")


# --------------------------------------------------------------------------------------------
# TensorBoard: torch's SummaryWriter, as verl, OpenRLHF and transformers' callback call it
# --------------------------------------------------------------------------------------------


def summary_writer(log_dir):
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(log_dir))


def test_tensorboard_verl_adapter_fit(tmp_path, monkeypatch):
    """verl 0.9.1 verl/utils/tracking.py ``_TensorboardAdapter.log``: add_scalar(key, data[key], step)."""
    c = Curve(seed=4)
    log_dir = tmp_path / "tensorboard_log" / "gsm8k" / "qwen-grpo"
    writer = summary_writer(log_dir)
    for step, data in verl_metrics(c):
        for key in data:
            writer.add_scalar(key, data[key], step)
    writer.close()
    assert detect(log_dir) == "tensorboard"
    (run,) = load_runs([str(tmp_path / "tensorboard_log")])  # found below the root, as verl nests them
    assert run.name == "qwen-grpo" and run.format == "tensorboard"
    x, y = series(run, "compute/tokens", VERL_Y)
    np.testing.assert_allclose(x, c.cum[list(c.evals())])
    np.testing.assert_allclose(y, c.y[list(c.evals())], rtol=1e-6)  # float32 scalars
    hours, _ = series(run, "compute/device_hours", VERL_Y)
    np.testing.assert_allclose(hours, np.cumsum(c.seconds)[list(c.evals())] * GPUS / 3600, rtol=1e-6)
    x_key, a = fit_A(tmp_path, log_dir, "--y", VERL_Y)
    assert x_key == "compute/tokens"
    assert_recovers_A(a)


def test_tensorboard_openrlhf_logger_fit(tmp_path):
    """OpenRLHF 0.11.2 openrlhf/utils/logging_utils.py ``TensorboardLogger``: train/<k> every step,
    eval/<k> for compute_eval_metrics' eval_<datasource>_pass1; log_dir = tensorboard_dir/run_name."""
    c = Curve(seed=5)
    log_dir = tmp_path / "tb" / "qwen-reinforce"
    writer = summary_writer(log_dir)
    for s in range(STEPS + 1):
        if s:
            logs = {"policy_loss": 0.01, "rollout/reward_mean": float(c.train_reward[s]),
                    "rollout/response_length_mean": float(c.per_step[s]) / 256, "rollout/num_samples": 256.0,
                    "timing/generation": 0.7 * c.seconds[s], "timing/step_total": float(c.seconds[s])}
            for k, v in logs.items():
                writer.add_scalar(f"train/{k}", v, s)
        if s % EVERY == 0:
            for k, v in {"eval_gsm8k_pass1": float(c.y[s]), "eval_response_length_mean": 180.0}.items():
                writer.add_scalar(f"eval/{k}", v, s)
    writer.close()
    (run,) = load_runs([str(tmp_path / "tb")])
    x, _ = series(run, "compute/tokens", "eval/eval_gsm8k_pass1")
    np.testing.assert_allclose(x, c.cum[list(c.evals())], rtol=1e-6)
    assert "pass --gpus N" in run.notes["compute/device_hours"]
    (run,) = load_runs([str(tmp_path / "tb")], gpus=4)
    hours, _ = series(run, "compute/device_hours", "eval/eval_gsm8k_pass1")
    np.testing.assert_allclose(hours, np.cumsum(c.seconds)[list(c.evals())] * 4 / 3600, rtol=1e-6)
    x_key, a = fit_A(tmp_path, log_dir, "--y", "eval/eval_gsm8k_pass1")
    assert x_key == "compute/tokens"
    assert_recovers_A(a)


def test_tensorboard_of_a_trl_run_through_transformers_callback(tmp_path):
    """transformers' TensorBoardCallback.on_log (train/<key>, eval/<key> for eval_<key>) in a TRL
    output dir that also holds checkpoints: auto reads trainer_state.json, --format tensorboard the events."""
    from transformers import TrainerState
    from transformers.integrations import TensorBoardCallback

    c = Curve(seed=1)
    out = write_trl(tmp_path / "grpo-out", c)
    callback = TensorBoardCallback(tb_writer=summary_writer(out / "runs" / "Dec06_12-00-00_host"))
    for entry in trl_log_history(c):
        state = TrainerState(global_step=entry["step"])
        callback.on_log(None, state, None, logs={k: v for k, v in entry.items() if k != "step"})
    callback.tb_writer.close()
    assert load_runs([str(out)])[0].format == "trl"
    (run,) = load_runs([str(out)], format="tensorboard")
    assert run.format == "tensorboard" and run.name == "Dec06_12-00-00_host"
    x, y = series(run, "compute/tokens", "eval/reward")
    np.testing.assert_allclose(x, c.cum[list(c.evals())])
    np.testing.assert_allclose(y, c.y[list(c.evals())], rtol=1e-6)


def test_tensorboard_scalars_written_as_tensors_read_alike(tmp_path):
    """tensorboard's own writer (tensorboard.summary.Writer) stores scalars as tensors (plugin
    "scalars"), torch's SummaryWriter as simple values: the same run either way."""
    torch_writer = summary_writer(tmp_path / "torch")
    from tensorboard.summary import Writer

    tb_writer = Writer(str(tmp_path / "tb"))
    for step in range(5):
        for tag, value in {"val/accuracy": 0.1 + 0.1 * step, "compute/tokens": 1000.0 * step}.items():
            torch_writer.add_scalar(tag, value, step)
            tb_writer.add_scalar(tag, value, step=step)
    torch_writer.close()
    tb_writer.close()
    a, b = load_runs([str(tmp_path / "torch"), str(tmp_path / "tb")])
    assert a.records == b.records and len(a.records) == 5 and a.notes == b.notes == {}
    x, y = series(b, "compute/tokens")
    np.testing.assert_allclose(x, [0, 1000, 2000, 3000, 4000])
    np.testing.assert_allclose(y, [0.1, 0.2, 0.3, 0.4, 0.5], rtol=1e-6)


def test_tensorboard_without_the_package_says_how_to_install(tmp_path, monkeypatch):
    writer = summary_writer(tmp_path / "tb")
    writer.add_scalar("val/accuracy", 0.5, 0)
    writer.close()
    monkeypatch.setitem(sys.modules, "tensorboard.backend.event_processing", None)  # as if not installed
    with pytest.raises(RunError, match=r"pip install 'asymptote\[tensorboard\]'"):
        load_runs([str(tmp_path / "tb")])


# --------------------------------------------------------------------------------------------
# wandb offline runs: wandb's own reader (wandb leet inspect --json) and the parser beside it
# --------------------------------------------------------------------------------------------


def test_wandb_offline_run_fit_and_both_readers_agree(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    from analysis.readers import read_wandb_offline
    from analysis.readers.wandb_runs import has_leet_inspect

    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_MODE", "offline")
    c = Curve(seed=6)
    run = wandb.init(mode="offline", dir=str(tmp_path), project="asymptote", config={"name": "wb", "seed": 0})
    for s in range(STEPS + 1):
        line = {"step": s, "compute/tokens": float(c.cum[s]), "train/entropy": float(c.entropy[s])}
        if s % EVERY == 0:
            line["val/accuracy"] = float(c.y[s])
        run.log(line, step=s)
    run.finish()
    wandb.teardown()
    (offline,) = (tmp_path / "wandb").glob("offline-run-*")
    assert detect(offline) == "wandb" and detect(next(offline.glob("*.wandb"))) == "wandb"
    by_hand = read_wandb_offline(offline, by_hand=True)
    if has_leet_inspect():
        got = read_wandb_offline(offline, by_hand=False)
        assert got.records == by_hand.records and got.recipe == by_hand.recipe and got.name == by_hand.name == "wb"
    x, _ = series(by_hand, "compute/tokens")
    np.testing.assert_allclose(x, c.cum[list(c.evals())])
    assert load_runs([str(tmp_path / "wandb")])[0].name == "wb"  # the wandb folder: a folder of runs
    x_key, a = fit_A(tmp_path, offline)
    assert x_key == "compute/tokens"
    assert_recovers_A(a)


# --------------------------------------------------------------------------------------------
# Detection, --format, and the errors
# --------------------------------------------------------------------------------------------


def test_detection_goes_by_content(tmp_path, monkeypatch, committed_run):
    verl = write_verl(tmp_path, monkeypatch, Curve(), json_dumps=True)
    renamed = tmp_path / "metrics.jsonl"  # a verl log named like Asymptote's
    renamed.write_text(verl.read_text())
    assert detect(renamed) == "verl" and load_runs([str(renamed)])[0].format == "verl"
    plain = tmp_path / "log.txt"
    plain.write_text((committed_run / "metrics.jsonl").read_text())
    assert detect(plain) == "asymptote" and detect(committed_run) == "asymptote"
    (tmp_path / "curve.dat").write_text("step,compute/tokens,val/accuracy\n0,0,0.1\n")
    assert detect(tmp_path / "curve.dat") == "csv"
    assert detect(tmp_path) is None  # a folder of runs is not one run


def test_format_forces_and_a_wrong_one_is_a_clear_error(tmp_path, monkeypatch, capsys):
    c = Curve(seed=2)
    path = write_verl(tmp_path, monkeypatch, c, json_dumps=True)
    assert load_runs([str(path)], format="verl")[0].format == "verl"
    with pytest.raises(RunError, match=r"--format trl: .*qwen-grpo.jsonl is not a TRL .* it holds verl runs"):
        load_runs([str(path)], format="trl")
    with pytest.raises(RunError, match="unknown format 'mlflow'; expected one of auto, asymptote"):
        load_runs([str(path)], format="mlflow")
    assert run_cli("fit", path, "--format", "tensorboard", "--y", VERL_Y, "--out", tmp_path / "o") == 2
    assert "--format tensorboard: " in capsys.readouterr().err
    with pytest.raises(RunError, match="holds no run that Asymptote can read"):
        load_runs([str(_empty(tmp_path))])


def _empty(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    (d / "notes.txt").write_text("nothing here\n")
    return d


def test_cli_format_choices_are_the_readers():
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    action = next(a for a in parser._subparsers._group_actions[0].choices["fit"]._actions if a.dest == "format")
    assert tuple(action.choices) == FORMATS


def test_missing_y_lists_the_candidates(tmp_path, monkeypatch, capsys):
    path = write_verl(tmp_path, monkeypatch, Curve(), json_dumps=True)
    assert run_cli("fit", path, "--out", tmp_path / "o") == 2  # --y left at val/accuracy
    err = capsys.readouterr().err
    assert "qwen-grpo.jsonl (verl) has no 'val/accuracy' values; keys present: eval metrics: " in err
    assert f"eval metrics: {VERL_Y}, val-aux/openai/gsm8k/reward/mean@1; other numeric metrics: " in err
    assert f"e.g. --y {VERL_Y}" in err
    assert "compute/tokens" not in err.split("keys present:")[1]  # axes are not offered as y


def test_per_step_amounts_logged_every_kth_step_count_for_k_steps():
    from analysis.readers.base import accumulate

    records = [{"step": 0, "val": 0.1}, {"step": 5, "tok": 100}, {"step": 10, "tok": 120},
               {"step": 10, "val": 0.3}, {"step": 20, "tok": 90}]
    assert accumulate(records, "tok", "cum")
    assert [r["cum"] for r in records] == [0, 500, 1100, 1100, 2000]  # 5 x 100, 5 x 120, 10 x 90
    assert not accumulate(records, "absent", "cum2") and "cum2" not in records[0]


def test_a_prior_built_from_trl_runs_feeds_a_fit_with_prior(tmp_path, capsys):
    """`asymptote prior build` reads TRL output directories like any source, labels families by
    --family, and `asymptote fit --prior` fits a new TRL run's prefix under the prior."""
    dirs = [write_trl(tmp_path / f"trl-{fam}-s{seed}", Curve(seed=10 * i + seed))
            for i, fam in enumerate("ab") for seed in (0, 1)]
    prior_path = tmp_path / "prior.json"
    assert run_cli("prior", "build", *dirs, "--y", "eval_reward", "--family", "a=trl-a-*", "--family", "b=trl-b-*",
                   "-o", prior_path) == 0
    out = capsys.readouterr().out
    assert "learned from 4 run(s) of 2 families" in out and "log_tail" in out
    saved = json.loads(prior_path.read_text())
    assert saved["x"] == "compute/tokens" and saved["y"] == "eval_reward" and saved["law"] == "creep"
    assert {m["name"]: m["family"] for m in saved["members"]} == {
        "trl-a-s0": "a", "trl-a-s1": "a", "trl-b-s0": "b", "trl-b-s1": "b"}
    new = write_trl(tmp_path / "trl-new", Curve(seed=99))
    budget = Curve(seed=99).cum[40]
    assert run_cli("fit", new, "--y", "eval_reward", "--prior", prior_path, "--budget", budget, "--boot", "60",
                   "--out", tmp_path / "fit", "--no-plots") == 0
    out = capsys.readouterr().out
    assert "under a prior learned from finished runs" in out
    (cf,) = json.loads((tmp_path / "fit" / "fit.json").read_text())["fits"]
    assert cf["law"] == "creep" and cf["budget"] == pytest.approx(budget)
    assert abs(cf["params"]["A"]["value"] - A) < 0.1
    # a prior learned on another metric is refused, naming both axes
    assert run_cli("fit", new, "--y", "train/entropy", "--prior", prior_path, "--no-plots",
                   "--out", tmp_path / "fit2") == 2
    err = capsys.readouterr().err
    assert "was learned on eval_reward against compute/tokens; this fit is train/entropy" in err
