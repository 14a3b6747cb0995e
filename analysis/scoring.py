"""Score prediction methods on finished runs: fit each run's prefix, predict its end, compare.

For every run, every prefix (a share of the run's final compute) and every method of
``analysis/methods.py``, :func:`score_run` records a :class:`Case`: the prediction for the end of the
run (the mean of its last ``n_end`` evals) with its 95% interval, how many later evals fell inside
their one-eval intervals, and, where the method names an identified asymptote, whether that
asymptote held (:func:`holds`). :func:`summarize` and :func:`prefix_table` turn the cases into the
tables of ``bench/prediction.py --report``: one per prefix, methods ranked by median |error|.

Definitions used in the tables:

* **error**: predicted curve at the run's final compute minus the measured end (mean of the last
  ``n_end`` evals); *signed mean* its mean, *median |error|* the median of its absolute value over
  the runs, a method that could not fit a run counting as an infinite error there;
* **end coverage**: the share of runs whose measured end lies inside the 95% interval for the mean of
  ``n_end`` evals; **later coverage**: the share of all evals after the prefix inside their 95%
  interval for one eval;
* **width**: the median width of the end's 95% interval;
* **confident and wrong**: a prediction given without any warning whose end interval misses the
  measured end (methods that never warn are always confident);
* **A holds**: for a forecast that names an identified asymptote, its 95% interval contains both the
  measured end and ``beyond``, the value at twice the run's final compute by the run's own full fit
  of the creep law (the best estimate of where the run was going).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from analysis.bootstrap import Interval
from analysis.fit import FitError
from analysis.methods import Context, forecast

Array = np.ndarray


@dataclass
class Case:
    """One method's prediction from one prefix of one run, and what the run then did."""

    run: str
    family: str
    prefix: float
    method: str
    budget: float
    end: float
    """The measured end: the mean of the run's last n_end evals."""
    error: str | None = None
    predicted: float = float("nan")
    low: float = float("nan")
    high: float = float("nan")
    later_inside: int = 0
    later_total: int = 0
    asymptote: list[float] | None = None
    """[value, low, high] of the asymptote, where the method names one."""
    identified: bool = False
    warnings: list[str] = field(default_factory=list)
    beyond: float = float("nan")
    details: dict = field(default_factory=dict)

    @property
    def fitted(self) -> bool:
        return self.error is None

    @property
    def abs_error(self) -> float:
        return abs(self.predicted - self.end) if self.fitted else math.inf

    @property
    def inside(self) -> bool:
        return self.fitted and self.low <= self.end <= self.high

    @property
    def confident_wrong(self) -> bool:
        return self.fitted and not self.warnings and not self.inside

    @property
    def a_holds(self) -> bool | None:
        """Whether an identified asymptote held (None where the forecast names none as identified)."""
        if not (self.fitted and self.identified and self.asymptote):
            return None
        return holds(Interval(*self.asymptote), self.end, self.beyond)


def holds(asymptote: Interval, end: float, beyond: float) -> bool:
    """An asymptote's interval holds when it contains the run's end and the value beyond it."""
    return asymptote.low <= end <= asymptote.high and (math.isnan(beyond) or asymptote.low <= beyond <= asymptote.high)


def score_run(
    x: Array,
    y: Array,
    name: str,
    family: str,
    prefixes: tuple[float, ...],
    methods: tuple[str, ...],
    context: Callable[[float], Context],
    *,
    n_end: int = 5,
    beyond: float = float("nan"),
) -> list[Case]:
    """Every method's prediction from every prefix of the run (x, y). ``context(budget)`` gives
    each prefix its :class:`Context` (a prior without the run's family, the compute per step up to
    the budget)."""
    order = np.argsort(x, kind="stable")
    x, y = np.asarray(x, float)[order], np.asarray(y, float)[order]
    final = float(x[-1])
    end = float(np.mean(y[-n_end:]))
    cases = []
    for p in prefixes:
        budget = p * final
        later = x > budget
        at = np.append(x[later], final)
        ctx = context(budget)
        for m in methods:
            case = Case(name, family, p, m, budget, end, beyond=beyond)
            try:
                f = forecast(m, x, y, budget, at, ctx)
            except (FitError, ValueError, np.linalg.LinAlgError) as e:
                case.error = str(e)
                cases.append(case)
                continue
            case.predicted, case.low, case.high = f.curve[-1].value, f.end.low, f.end.high
            case.later_total = int(later.sum())
            case.later_inside = int(sum(iv.contains(v) for iv, v in zip(f.one_eval[:-1], y[later])))
            a = f.asymptote
            case.asymptote = None if a is None else [a.value, a.low, a.high]
            case.identified, case.warnings, case.details = f.identified, list(f.warnings), dict(f.details)
            cases.append(case)
    return cases


@dataclass(frozen=True)
class Summary:
    method: str
    prefix: float
    runs: int
    fitted: int
    median_abs_error: float
    signed_mean: float
    end_coverage: float
    later_coverage: float
    later_evals: int
    median_width: float
    confident_wrong: int
    identified: int
    a_held: int


def summarize(cases: list[Case], prefix: float, method: str) -> Summary:
    rows = [c for c in cases if c.prefix == prefix and c.method == method]
    fit = [c for c in rows if c.fitted]
    later = sum(c.later_total for c in fit)
    ident = [c for c in fit if c.a_holds is not None]
    return Summary(
        method=method,
        prefix=prefix,
        runs=len(rows),
        fitted=len(fit),
        median_abs_error=float(np.median([c.abs_error for c in rows])) if rows else math.nan,
        signed_mean=float(np.mean([c.predicted - c.end for c in fit])) if fit else math.nan,
        end_coverage=float(np.mean([c.inside for c in rows])) if rows else math.nan,
        later_coverage=sum(c.later_inside for c in fit) / later if later else math.nan,
        later_evals=later,
        median_width=float(np.median([c.high - c.low for c in fit])) if fit else math.nan,
        confident_wrong=sum(c.confident_wrong for c in rows),
        identified=len(ident),
        a_held=sum(bool(c.a_holds) for c in ident),
    )


def ranked(cases: list[Case], prefix: float) -> list[Summary]:
    """Every method's summary at ``prefix``, best first: median |error|, then end coverage."""
    methods = sorted({c.method for c in cases if c.prefix == prefix})
    out = [summarize(cases, prefix, m) for m in methods]
    return sorted(out, key=lambda s: (s.median_abs_error, -s.end_coverage))


def prefix_table(cases: list[Case], prefix: float) -> str:
    """One prefix's table, methods ranked."""
    from analysis.report import table

    header = ["rank", "method", "fitted", "median |error|", "signed mean", "end in 95%", "later in 95%",
              "median width", "confident & wrong", "identified A held"]
    rows = []
    for i, s in enumerate(ranked(cases, prefix)):
        rows.append([
            str(i + 1), s.method, f"{s.fitted}/{s.runs}",
            "inf" if math.isinf(s.median_abs_error) else f"{s.median_abs_error:.3f}",
            f"{s.signed_mean:+.3f}", f"{s.end_coverage:.0%}",
            "-" if math.isnan(s.later_coverage) else f"{s.later_coverage:.0%} of {s.later_evals}",
            f"{s.median_width:.3f}", str(s.confident_wrong),
            "-" if not s.identified else f"{s.a_held}/{s.identified}",
        ])
    ratio = 1.0 / prefix
    return f"prefix {prefix:.1%} of the compute ({ratio:.0f}x extrapolation)\n" + table(header, rows, left=2)
