"""Learning-curve families for extrapolation: the parametric ensemble of Domhan et al. 2015.

Domhan, Springenberg & Hutter 2015 ("Speeding up Automatic Hyperparameter Optimization of Deep
Neural Networks by Extrapolation of Learning Curves", IJCAI), Table 1, fit eleven parametric
families to the first part of a learning curve and combine them; the combination extrapolates
better than any one family. Their families, written here as in the paper, in a normalised axis
``t = x / x0 >= 1`` (x0: the first fitted compute, so that one set of bounds serves FLOPs, tokens
and GPU-hours alike; the ensemble in ``analysis/ensemble.py`` does the normalising):

=================  =============================================  ==========  ============
name               y(t)                                            asymptote   parameters
=================  =============================================  ==========  ============
``pow3``           c - a t^(-alpha)                                c           c, a, alpha
``pow4``           c - (a t + b)^(-alpha)                          c           c, a, b, alpha
``log_power``      a / (1 + (t / e^b)^(-c))                        a           a, b, c
``mmf``            alpha - (alpha - beta) / (1 + (kappa t)^delta)  alpha       alpha, beta, kappa, delta
``weibull``        alpha - (alpha - beta) exp(-(kappa t)^delta)     alpha       alpha, beta, kappa, delta
``janoschek``      alpha - (alpha - beta) exp(-kappa t^delta)       alpha       alpha, beta, kappa, delta
``exp4``           c - exp(-a t^alpha + b)                         c           c, a, b, alpha
``ilog2``          c - a / log(t + 1)                              c           c, a
``hill3``          y_max t^eta / (kappa^eta + t^eta)               y_max       y_max, eta, kappa
``vapor_pressure`` exp(a + b / t + c log t)                        none (c>0)  a, b, c
``loglog_linear``  log(a log t + b)                                none        a, b
=================  =============================================  ==========  ============

MMF (Morgan-Mercer-Flodin) is algebraically ScaleRL's sigmoid with R0 = beta free, C_mid = x0 / kappa
and B = delta. ``ilog2`` is written with log(t + 1) so that it is finite at t = 1 (Domhan's
epochs start at 1, where log 1 = 0). Each family is a :class:`analysis.laws.Law`, so the fitter
(``analysis/fit.py``) fits it with the same bounded, multi-start, robust least squares.
"""

from __future__ import annotations

import numpy as np

from analysis.laws import LAWS, Law, a_range, span

Array = np.ndarray


def pow3(t: Array, c: float, a: float, alpha: float) -> Array:
    return c - a * np.power(t, -alpha)


def pow4(t: Array, c: float, a: float, b: float, alpha: float) -> Array:
    return c - np.power(a * t + b, -alpha)


def log_power(t: Array, a: float, b: float, c: float) -> Array:
    with np.errstate(over="ignore", divide="ignore"):
        return a / (1.0 + np.power(np.asarray(t, dtype=float) / np.exp(b), -c))


def mmf(t: Array, alpha: float, beta: float, kappa: float, delta: float) -> Array:
    with np.errstate(over="ignore"):
        return alpha - (alpha - beta) / (1.0 + np.power(kappa * np.asarray(t, dtype=float), delta))


def weibull(t: Array, alpha: float, beta: float, kappa: float, delta: float) -> Array:
    return alpha - (alpha - beta) * np.exp(-np.power(kappa * np.asarray(t, dtype=float), delta))


def janoschek(t: Array, alpha: float, beta: float, kappa: float, delta: float) -> Array:
    return alpha - (alpha - beta) * np.exp(-kappa * np.power(t, delta))


def exp4(t: Array, c: float, a: float, b: float, alpha: float) -> Array:
    with np.errstate(over="ignore"):
        return c - np.exp(-a * np.power(t, alpha) + b)


def ilog2(t: Array, c: float, a: float) -> Array:
    return c - a / np.log(np.asarray(t, dtype=float) + 1.0)


def hill3(t: Array, y_max: float, eta: float, kappa: float) -> Array:
    with np.errstate(over="ignore"):
        return y_max / (1.0 + np.power(kappa / np.asarray(t, dtype=float), eta))


def vapor_pressure(t: Array, a: float, b: float, c: float) -> Array:
    t = np.asarray(t, dtype=float)
    with np.errstate(over="ignore"):
        return np.exp(a + b / t + c * np.log(t))


def loglog_linear(t: Array, a: float, b: float) -> Array:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.log(a * np.log(np.asarray(t, dtype=float)) + b)


# --------------------------------------------------------------------------------------------
# Bounds and starts from the data (t = x / x0 >= 1, y the metric)
# --------------------------------------------------------------------------------------------


def _level(t: Array, y: Array) -> tuple[float, float, float, float, float]:
    """(first, last, gain, lo, hi): the mean of the first and last three points, their
    difference, and the range an asymptote may take (:func:`analysis.laws.a_range`)."""
    order = np.argsort(t)
    first, last = float(np.mean(y[order][:3])), float(np.mean(y[order][-3:]))
    gain = last - first if abs(last - first) > 1e-6 else max(span(y), 1e-3)
    lo, hi = a_range(y, first)
    return first, last, gain, lo, hi


def _top(y: Array, last: float, gain: float, lo: float, hi: float) -> list[float]:
    """Starting asymptotes: the last level, and that plus half and twice the gain, inside [lo, hi]."""
    return [float(np.clip(last + f * gain, lo + 1e-6, hi - 1e-6)) for f in (0.0, 0.5, 2.0)]


def _pow3_bounds(t, y, fixed):
    _, _, _, lo, hi = _level(t, y)
    return {"c": (lo, hi), "a": (1e-8, 1e3), "alpha": (1e-3, 5.0)}


def _pow3_starts(t, y, fixed):
    first, last, gain, lo, hi = _level(t, y)
    return [{"c": c, "a": max(c - first, 1e-6), "alpha": al} for c in _top(y, last, gain, lo, hi) for al in (0.3, 1.0)]


def _pow4_bounds(t, y, fixed):
    _, _, _, lo, hi = _level(t, y)
    return {"c": (lo, hi), "a": (1e-6, 1e4), "b": (1e-6, 1e4), "alpha": (1e-3, 5.0)}


def _pow4_starts(t, y, fixed):
    first, last, gain, lo, hi = _level(t, y)
    out = []
    for c in _top(y, last, gain, lo, hi):
        for al in (0.3, 1.0):
            base = max(c - first, 1e-6) ** (-1.0 / al)  # (a + b)^-alpha = c - first at t = 1
            out.append({"c": c, "a": 0.5 * base, "b": 0.5 * base, "alpha": al})
    return out


def _sigmoid_like_bounds(t, y, fixed):
    _, _, _, lo, hi = _level(t, y)
    tmax = float(np.max(t))
    return {"alpha": (lo, hi), "beta": (lo, hi), "kappa": (1e-3 / tmax, 1e3), "delta": (0.05, 20.0)}


def _sigmoid_like_starts(t, y, fixed):
    first, last, gain, lo, hi = _level(t, y)
    mids = np.exp(np.quantile(np.log(t), [0.3, 0.7]).tolist() + [float(np.log(np.max(t))) + 1.0])
    beta = float(np.clip(first - 0.5 * gain, lo + 1e-6, hi - 1e-6))
    return [{"alpha": a, "beta": beta, "kappa": 1.0 / float(m), "delta": d}
            for a in _top(y, last, gain, lo, hi) for m in mids for d in (1.0, 3.0)]


def _log_power_bounds(t, y, fixed):
    _, _, _, lo, hi = _level(t, y)
    return {"a": (lo, hi), "b": (-10.0, float(np.log(np.max(t))) + 10.0), "c": (0.01, 20.0)}


def _log_power_starts(t, y, fixed):
    first, last, gain, lo, hi = _level(t, y)
    lt = np.log(t)
    return [{"a": a, "b": float(b), "c": c} for a in _top(y, last, gain, lo, hi)
            for b in np.quantile(lt, [0.2, 0.8]) for c in (0.5, 2.0)]


def _exp4_bounds(t, y, fixed):
    _, _, _, lo, hi = _level(t, y)
    return {"c": (lo, hi), "a": (1e-6, 1e3), "b": (-20.0, 5.0), "alpha": (1e-3, 3.0)}


def _exp4_starts(t, y, fixed):
    first, last, gain, lo, hi = _level(t, y)
    out = []
    for c in _top(y, last, gain, lo, hi):
        b0 = float(np.log(max(c - first, 1e-6)))
        out += [{"c": c, "a": a, "b": b0 + a, "alpha": al} for a in (0.1, 1.0) for al in (0.3, 1.0)]
    return out


def _ilog2_bounds(t, y, fixed):
    _, _, _, lo, hi = _level(t, y)
    return {"c": (lo, hi), "a": (1e-8, 1e3)}


def _ilog2_starts(t, y, fixed):
    first, last, gain, lo, hi = _level(t, y)
    return [{"c": c, "a": max(c - first, 1e-6) * np.log(2.0)} for c in _top(y, last, gain, lo, hi)]


def _hill3_bounds(t, y, fixed):
    _, _, _, lo, hi = _level(t, y)
    return {"y_max": (max(lo, 1e-6) if lo >= 0 else lo, hi), "eta": (0.01, 20.0), "kappa": (1e-4, 1e4 * float(np.max(t)))}


def _hill3_starts(t, y, fixed):
    first, last, gain, lo, hi = _level(t, y)
    mids = np.exp(np.quantile(np.log(t), [0.3, 0.7]))
    return [{"y_max": a, "eta": e, "kappa": float(m)} for a in _top(y, last, gain, lo, hi) for e in (0.5, 2.0)
            for m in mids]


def _vapor_bounds(t, y, fixed):
    return {"a": (-20.0, 5.0), "b": (-20.0, 20.0), "c": (-5.0, 5.0)}


def _vapor_starts(t, y, fixed):
    keep = y > 0
    if keep.sum() >= 3:  # log y = a + b / t + c log t is linear in (a, b, c)
        design = np.column_stack([np.ones(keep.sum()), 1.0 / t[keep], np.log(t[keep])])
        coef, *_ = np.linalg.lstsq(design, np.log(y[keep]), rcond=None)
        guess = {"a": float(coef[0]), "b": float(coef[1]), "c": float(coef[2])}
        guess = {k: float(np.clip(v, *_vapor_bounds(t, y, fixed)[k])) for k, v in guess.items()}
        return [guess, {"a": 0.0, "b": 0.0, "c": 0.0}]
    return [{"a": 0.0, "b": 0.0, "c": 0.0}]


def _loglog_bounds(t, y, fixed):
    return {"a": (1e-8, 1e3), "b": (1e-3, 1e3)}


def _loglog_starts(t, y, fixed):
    e = np.exp(y)  # exp(y) = a log t + b is linear in (a, b)
    design = np.column_stack([np.log(t), np.ones_like(t)])
    (a, b), *_ = np.linalg.lstsq(design, e, rcond=None)
    return [{"a": float(np.clip(a, 1e-6, 1e3)), "b": float(np.clip(b, 1e-2, 1e3))}, {"a": 0.1, "b": 1.0}]


def _vapor_asymptote(p: dict[str, float]) -> float:
    """exp(a + b/t + c log t) grows without bound for c > 0, falls to 0 for c < 0, tends to e^a at c = 0."""
    return np.inf if p["c"] > 0 else (float(np.exp(p["a"])) if p["c"] == 0 else 0.0)


def _family(name, fn, params, bounds, starts, asymptote, log_params=()) -> Law:
    return Law(name=name, fn=fn, params=params, bounds=bounds, starts=starts, asymptote=asymptote,
               log_params=frozenset(log_params))


_SIG_PARAMS = ("alpha", "beta", "kappa", "delta")
FAMILIES: dict[str, Law] = {
    "pow3": _family("pow3", pow3, ("c", "a", "alpha"), _pow3_bounds, _pow3_starts, lambda p: p["c"], {"a"}),
    "pow4": _family("pow4", pow4, ("c", "a", "b", "alpha"), _pow4_bounds, _pow4_starts, lambda p: p["c"],
                    {"a", "b"}),
    "log_power": _family("log_power", log_power, ("a", "b", "c"), _log_power_bounds, _log_power_starts,
                         lambda p: p["a"]),
    "mmf": _family("mmf", mmf, _SIG_PARAMS, _sigmoid_like_bounds, _sigmoid_like_starts, lambda p: p["alpha"],
                   {"kappa"}),
    "weibull": _family("weibull", weibull, _SIG_PARAMS, _sigmoid_like_bounds, _sigmoid_like_starts,
                       lambda p: p["alpha"], {"kappa"}),
    "janoschek": _family("janoschek", janoschek, _SIG_PARAMS, _sigmoid_like_bounds, _sigmoid_like_starts,
                         lambda p: p["alpha"], {"kappa"}),
    "exp4": _family("exp4", exp4, ("c", "a", "b", "alpha"), _exp4_bounds, _exp4_starts, lambda p: p["c"], {"a"}),
    "ilog2": _family("ilog2", ilog2, ("c", "a"), _ilog2_bounds, _ilog2_starts, lambda p: p["c"], {"a"}),
    "hill3": _family("hill3", hill3, ("y_max", "eta", "kappa"), _hill3_bounds, _hill3_starts,
                     lambda p: p["y_max"], {"kappa"}),
    "vapor_pressure": _family("vapor_pressure", vapor_pressure, ("a", "b", "c"), _vapor_bounds, _vapor_starts,
                              _vapor_asymptote),
    "loglog_linear": _family("loglog_linear", loglog_linear, ("a", "b"), _loglog_bounds, _loglog_starts,
                             lambda p: np.inf, {"a", "b"}),
}
"""The families of Domhan et al. 2015, Table 1, by name."""

ALL_LAWS: dict[str, Law] = {**LAWS, **FAMILIES}
"""Every law the fitter knows: ScaleRL's and the other laws of ``analysis/laws.py``, and the
families above. ``Fit.law`` names one of them."""
