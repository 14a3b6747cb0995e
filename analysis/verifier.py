"""Verifier quality: how often a verifier (an LLM judge, a cheap checker, unit tests) agrees with a
stronger reference, and what its errors cost best-of-n sampling and RL training.

Inputs are scored samples: per sample a verifier verdict and a reference verdict (scores are
thresholded), grouped by prompt. From them:

- FPR α = P(verifier accepts | reference says wrong), TPR β = P(accepts | reference says right),
  FNR = 1 − β, each with an exact (Clopper–Pearson) interval;
- precision of an accepted sample, pβ / (pβ + (1 − p)α), with p the per-sample true accuracy;
- best-of-n under the independent-verifier model (Stroebl et al. 2024, "Inference Scaling fLaws"):
  draw n samples, each right with probability p; the verifier accepts each independently (rate β
  if right, α if wrong); return a uniformly chosen accepted sample, or a uniformly chosen sample if
  none is accepted. With a = pβ + (1 − p)α,

      P_n(p) = (1 − (1 − a)^n) · pβ/a + (1 − a)^n · p(1 − β)/(1 − a),

  which is p at n = 1 and rises (if β > α) to the precision pβ/a as n → ∞: no amount of resampling
  beats the verifier's precision. Per-prompt accuracies p_i are used when samples carry prompt
  ids (a prompt the model never solves stays unsolved), and the table averages P_n(p_i) over prompts;
- the reward the trainer sees, E[r_verifier] = βp + α(1 − p), and its bias against the true p.

Intervals on the best-of-n table, the precision and the reward bias come from a bootstrap over
prompts (a cluster bootstrap: a prompt's samples are resampled together).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

from analysis.bootstrap import Interval
from envs.base import Prompt, jsonl_objects

if TYPE_CHECKING:
    from rewards.judge import LocalJudgeFactory

DEFAULT_NS = (1, 2, 4, 8, 16, 32, 64)


@dataclass(frozen=True)
class Sample:
    """One scored sample: the prompt it answers and the two verdicts."""

    prompt_id: str
    verifier: bool
    reference: bool


def exact_interval(k: int, n: int, level: float = 0.95) -> Interval:
    """k successes of n as a proportion with its Clopper–Pearson interval (scipy's binomtest).
    With n = 0 the value is NaN and the interval [0, 1]."""
    from scipy.stats import binomtest

    if n == 0:
        return Interval(float("nan"), 0.0, 1.0, level)
    ci = binomtest(k, n).proportion_ci(confidence_level=level, method="exact")
    return Interval(k / n, float(ci.low), float(ci.high), level)


def best_of_n(p, alpha, beta, n):
    """P(the chosen sample is right) for best-of-n with an independent verifier (module docstring).
    Array arguments broadcast."""
    p, alpha, beta, n = (np.asarray(v, dtype=float) for v in (p, alpha, beta, n))
    a = p * beta + (1 - p) * alpha  # P(a sample is accepted)
    none = (1 - a) ** n  # P(no sample of n is accepted)
    with np.errstate(divide="ignore", invalid="ignore"):
        prec = np.where(a > 0, p * beta / np.where(a > 0, a, 1), p)
        right_if_rejected = np.where(a < 1, p * (1 - beta) / np.where(a < 1, 1 - a, 1), p)
    return (1 - none) * prec + none * right_if_rejected


def precision(p, alpha, beta):
    """P(right | accepted) = pβ / (pβ + (1 − p)α); p itself where nothing is ever accepted."""
    p, alpha, beta = (np.asarray(v, dtype=float) for v in (p, alpha, beta))
    a = p * beta + (1 - p) * alpha
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(a > 0, p * beta / np.where(a > 0, a, 1), p)


def expected_reward(p, alpha, beta):
    """The verifier's mean reward on samples of true accuracy p: βp + α(1 − p)."""
    return np.asarray(beta) * np.asarray(p) + np.asarray(alpha) * (1 - np.asarray(p))


@dataclass
class VerifierReport:
    samples: int
    prompts: int
    accuracy: Interval
    """p: the reference's accept rate (true per-sample accuracy)."""
    verifier_accept_rate: Interval
    fpr: Interval
    """α: accepted among samples the reference calls wrong."""
    fnr: Interval
    """1 − β: rejected among samples the reference calls right."""
    tpr: Interval
    precision: Interval
    """P(right | accepted), pooled p; the ceiling of best-of-n with the pooled accuracy."""
    expected_reward: Interval
    """E[r_verifier] = βp + α(1 − p): what a trainer using this verifier sees on average."""
    reward_bias: Interval
    """E[r_verifier] − p."""
    counts: dict[str, int]
    """tp, fp, tn, fn."""
    best_of_n: dict[int, Interval]
    """n -> P(best-of-n picks a right sample), averaged over prompts with their own p_i."""
    ceiling: Interval
    """lim n→∞ of that average: the mean over prompts of precision(p_i)."""
    oracle: dict[int, float]
    """n -> pass@n with a perfect verifier, mean over prompts of 1 − (1 − p_i)^n (for contrast)."""
    bootstrap_draws: int
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["best_of_n"] = {str(k): asdict(v) for k, v in self.best_of_n.items()}
        d["oracle"] = {str(k): v for k, v in self.oracle.items()}
        return d


def _groups(samples: list[Sample]) -> np.ndarray:
    """Per prompt: [n, right, accepted-and-right (tp), accepted-and-wrong (fp)]."""
    index: dict[str, int] = {}
    rows: list[list[int]] = []
    for s in samples:
        if s.prompt_id not in index:
            index[s.prompt_id] = len(rows)
            rows.append([0, 0, 0, 0])
        r = rows[index[s.prompt_id]]
        r[0] += 1
        r[1] += s.reference
        r[2] += s.verifier and s.reference
        r[3] += s.verifier and not s.reference
    return np.array(rows, dtype=float)


def _stats(weights: np.ndarray, g: np.ndarray, ns: np.ndarray) -> dict[str, np.ndarray]:
    """Statistics for rows of prompt weights (B × G; 1s for the data itself)."""
    tot = weights @ g  # B × 4
    n, pos, tp, fp = tot.T
    neg = n - pos
    with np.errstate(divide="ignore", invalid="ignore"):
        p = pos / n
        beta = np.where(pos > 0, tp / np.where(pos > 0, pos, 1), 1.0)
        alpha = np.where(neg > 0, fp / np.where(neg > 0, neg, 1), 0.0)
    p_i = g[:, 1] / g[:, 0]  # G
    wsum = weights.sum(axis=1)
    bon = best_of_n(p_i[None, :, None], alpha[:, None, None], beta[:, None, None], ns[None, None, :])  # B × G × N
    bon = np.einsum("bg,bgn->bn", weights, bon) / wsum[:, None]
    ceil = (weights * precision(p_i[None, :], alpha[:, None], beta[:, None])).sum(axis=1) / wsum
    er = expected_reward(p, alpha, beta)
    return {"p": p, "alpha": alpha, "beta": beta, "precision": precision(p, alpha, beta), "reward": er,
            "bias": er - p, "best_of_n": bon, "ceiling": ceil}


def _percentile(value: float, draws: np.ndarray, level: float) -> Interval:
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return Interval(float(value), float("nan"), float("nan"), level)
    lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return Interval(float(value), float(min(lo, value)), float(max(hi, value)), level)


def verifier_report(samples: Iterable[Sample], ns: Iterable[int] = DEFAULT_NS, draws: int = 1000,
                    level: float = 0.95, seed: int = 0) -> VerifierReport:
    """The report of module docstring for scored samples (at least one)."""
    samples = list(samples)
    if not samples:
        raise ValueError("no scored samples: a verifier report needs samples with a verifier and a reference verdict")
    ns_arr = np.array(sorted(set(int(n) for n in ns)), dtype=float)
    if ns_arr.size == 0 or ns_arr[0] < 1:
        raise ValueError(f"best-of-n sizes must be integers >= 1; got {list(ns)}")
    g = _groups(samples)
    G = len(g)
    point = _stats(np.ones((1, G)), g, ns_arr)
    rng = np.random.default_rng(seed)
    boot = _stats(rng.multinomial(G, np.full(G, 1.0 / G), size=draws).astype(float), g, ns_arr) if draws > 0 else None

    def iv(name: str, col: int | None = None) -> Interval:
        v = point[name][0] if col is None else point[name][0, col]
        if boot is None:
            return Interval(float(v), float("nan"), float("nan"), level)
        d = boot[name] if col is None else boot[name][:, col]
        return _percentile(float(v), d, level)

    n_all, pos, tp, fp = (int(x) for x in g.sum(axis=0))
    neg = n_all - pos
    fn, tn = pos - tp, neg - fp
    notes = []
    if pos == 0:
        notes.append("the reference accepts no sample: TPR/FNR are undefined (taken as TPR 1)")
    if neg == 0:
        notes.append("the reference rejects no sample: FPR is undefined (taken as 0)")
    if G == 1 and n_all > 1:
        notes.append("one prompt only: the bootstrap over prompts has no spread; group samples by prompt_id")
    p_i = g[:, 1] / g[:, 0]
    return VerifierReport(
        samples=n_all,
        prompts=G,
        accuracy=exact_interval(pos, n_all, level),
        verifier_accept_rate=exact_interval(tp + fp, n_all, level),
        fpr=exact_interval(fp, neg, level),
        fnr=exact_interval(fn, pos, level),
        tpr=exact_interval(tp, pos, level),
        precision=iv("precision"),
        expected_reward=iv("reward"),
        reward_bias=iv("bias"),
        counts={"tp": tp, "fp": fp, "tn": tn, "fn": fn},
        best_of_n={int(n): iv("best_of_n", j) for j, n in enumerate(ns_arr)},
        ceiling=iv("ceiling"),
        oracle={int(n): float(np.mean(1 - (1 - p_i) ** n)) for n in ns_arr},
        bootstrap_draws=draws,
        notes=notes,
    )


# --------------------------------------------------------------------------------------------
# Reading scored samples
# --------------------------------------------------------------------------------------------


def _verdict(value: Any, threshold: float, where: str, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value) >= threshold
    if isinstance(value, str) and value.strip().lower() in ("yes", "true", "correct", "pass", "1", "no", "false",
                                                            "incorrect", "fail", "0"):
        return value.strip().lower() in ("yes", "true", "correct", "pass", "1")
    raise ValueError(f"{where}: field '{key}' is {value!r}; allowed: a number (>= threshold {threshold} accepts), "
                     "a boolean, or yes/no, true/false, correct/incorrect, pass/fail")


def read_scored(path: str | Path, verifier_key: str = "verifier", reference_key: str = "reference",
                prompt_key: str = "prompt_id", threshold: float = 0.5) -> list[Sample]:
    """Samples from a JSONL file of one object per sample: {prompt_id, verifier, reference}.
    A line may also hold lists (one entry per completion of the prompt) under both keys.
    Lines without `prompt_key` are their own prompt."""
    path = Path(path)
    out: list[Sample] = []
    for where, lineno, rec in jsonl_objects(path):
        missing = [k for k in (verifier_key, reference_key) if k not in rec]
        if missing:
            raise ValueError(f"{where}: missing field(s) {', '.join(missing)}; present: {', '.join(rec) or 'none'} "
                             "(choose the fields with --verifier-field/--reference-field)")
        pid = str(rec.get(prompt_key, f"line{lineno}"))
        v, r = rec[verifier_key], rec[reference_key]
        if isinstance(v, list) or isinstance(r, list):
            if not (isinstance(v, list) and isinstance(r, list) and len(v) == len(r)):
                raise ValueError(f"{where}: '{verifier_key}' and '{reference_key}' must both be lists of one length")
            pairs = list(zip(v, r))
        else:
            pairs = [(v, r)]
        for vi, ri in pairs:
            out.append(Sample(pid, _verdict(vi, threshold, where, verifier_key),
                              _verdict(ri, threshold, where, reference_key)))
    return out


def score_run_samples(path: str | Path, reference_reward: str, threshold: float = 0.5, *,
                      reference_args: dict[str, Any] | None = None, verifier_reward: str | None = None,
                      verifier_args: dict[str, Any] | None = None,
                      local_judge: LocalJudgeFactory | None = None) -> list[Sample]:
    """Samples from a run's samples.jsonl. The reference is the registered reward
    `reference_reward` (e.g. math_verify) recomputed on each completion against the logged gold
    answer; the verifier is the logged reward, or the registered reward `verifier_reward` (e.g.
    llm_judge with its args) recomputed the same way. Each record's completions are scored as one
    batch by compute_rewards, as in training: a reward that raises scores 0 (a rejection).
    local_judge: what builds a local judge model (llm_judge with backend hf or vllm; see
    rewards.judge.LocalJudgeFactory), which `asymptote verifier-report` passes from rl/."""
    from rewards import REWARDS, RewardConfig, RewardFunctionConfig, compute_rewards

    def scorer(name: str, args: dict[str, Any] | None):
        if name not in REWARDS:
            raise ValueError(f"unknown reward '{name}'; allowed: {', '.join(REWARDS)}")
        cfg = RewardConfig(functions=[RewardFunctionConfig(name=name, args=args or {})],  # validates the arguments
                           verifiable=name)

        def score(texts: list[str], prompt: Prompt) -> list[bool]:
            result = compute_rewards(texts, [prompt] * len(texts), cfg, local_judge=local_judge)
            return [value >= threshold for value in result.per_function[name]]

        return score

    reference = scorer(reference_reward, reference_args)
    verifier = scorer(verifier_reward, verifier_args) if verifier_reward else None
    out: list[Sample] = []
    path = Path(path)
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            rec = json.loads(line)
            if "completions" not in rec or "rewards" not in rec:
                raise ValueError(f"{path}:{lineno}: not a samples.jsonl record (needs completions and rewards)")
            prompt = Prompt(id=str(rec.get("prompt_id", lineno)),
                            messages=({"role": "user", "content": rec.get("prompt", "")},),
                            answer=str(rec.get("answer", "")))
            texts = list(rec["completions"])[: len(rec["rewards"])]
            right = reference(texts, prompt)
            accepted = verifier(texts, prompt) if verifier else [float(r) >= threshold for r in rec["rewards"]]
            out += [Sample(prompt.id, a, r) for a, r in zip(accepted, right)]
    return out


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def _fmt(iv: Interval, pct: bool = True) -> str:
    f = (lambda x: f"{100 * x:5.1f}%") if pct else (lambda x: f"{x:+.3f}")
    if np.isnan(iv.low):
        return f(iv.value)
    return f"{f(iv.value)} [{f(iv.low).strip()}, {f(iv.high).strip()}]"


def format_report(r: VerifierReport) -> str:
    c = r.counts
    lines = [
        f"verifier vs reference: {r.samples} samples over {r.prompts} prompts "
        f"(tp {c['tp']}, fp {c['fp']}, tn {c['tn']}, fn {c['fn']}); intervals {int(100 * r.fpr.level)}%",
        f"  true accuracy p              {_fmt(r.accuracy)}",
        f"  verifier accept rate         {_fmt(r.verifier_accept_rate)}",
        f"  false-positive rate α        {_fmt(r.fpr)}   wrong samples accepted",
        f"  false-negative rate 1-β      {_fmt(r.fnr)}   right samples rejected",
        f"  precision pβ/(pβ+(1-p)α)     {_fmt(r.precision)}   P(right | accepted)",
        f"  reward seen E[r]=βp+α(1-p)   {_fmt(r.expected_reward)}",
        f"  reward bias E[r]-p           {_fmt(r.reward_bias, pct=False)}",
        "",
        "best-of-n with this verifier (independent-verifier model, per-prompt accuracies):",
        f"  {'n':>4}  {'P(chosen is right)':<28}  {'perfect verifier (pass@n)':>25}",
    ]
    for n, iv in r.best_of_n.items():
        lines.append(f"  {n:>4}  {_fmt(iv):<28}  {100 * r.oracle[n]:24.1f}%")
    lines.append(f"  {'∞':>4}  {_fmt(r.ceiling):<28}  ceiling: resampling cannot beat the verifier's precision")
    for note in r.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def plot_report(r: VerifierReport, path: str | Path) -> Path:
    from analysis.plots import _figure, _save

    fig, ax = _figure()
    ns = np.array(list(r.best_of_n))
    vals = np.array([iv.value for iv in r.best_of_n.values()])
    lo = np.array([iv.low for iv in r.best_of_n.values()])
    hi = np.array([iv.high for iv in r.best_of_n.values()])
    ax.plot(ns, vals, "o-", color="#1f77b4", label="best-of-n with the verifier")
    if np.all(np.isfinite(lo)):
        ax.fill_between(ns, lo, hi, color="#1f77b4", alpha=0.2, label=f"{int(100 * r.ceiling.level)}% bootstrap interval")
    ax.plot(ns, [r.oracle[int(n)] for n in ns], "s--", color="#2ca02c", label="perfect verifier (pass@n)")
    ax.axhline(r.ceiling.value, color="#d62728", linestyle=":", label=f"ceiling (precision) {r.ceiling.value:.3f}")
    ax.set_xscale("log", base=2)
    ax.set_xticks(ns)
    ax.set_xticklabels([str(int(n)) for n in ns])
    ax.set_xlabel("n (samples per prompt)")
    ax.set_ylabel("P(chosen sample is right)")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Verifier: FPR {r.fpr.value:.3f}, FNR {r.fnr.value:.3f}")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)
