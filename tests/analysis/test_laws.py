"""The laws at hand-derived points (analysis/laws.py)."""

import math

import numpy as np
import pytest

from analysis.laws import LAWS, entropy_law, exp_power_law, power_law, sigmoid


def test_sigmoid_hand_values():
    # R(C) = R0 + (A - R0) / (1 + (C_mid / C)^B) with A = 0.6, R0 = 0.2, C_mid = 100, B = 2
    p = dict(A=0.6, B=2.0, C_mid=100.0, R0=0.2)
    assert sigmoid(np.array([100.0]), **p)[0] == pytest.approx(0.4)  # half the gain at C_mid
    assert sigmoid(np.array([200.0]), **p)[0] == pytest.approx(0.2 + 0.4 / 1.25)  # (1/2)^2 = 1/4
    assert sigmoid(np.array([50.0]), **p)[0] == pytest.approx(0.2 + 0.4 / 5.0)  # 2^2 = 4
    assert sigmoid(np.array([0.0]), **p)[0] == pytest.approx(0.2)  # R0 before RL
    assert sigmoid(np.array([1e12]), **p)[0] == pytest.approx(0.6)  # the asymptote A


def test_sigmoid_is_unit_free():
    # Measuring compute in other units moves C_mid, nothing else.
    C = np.array([10.0, 30.0, 90.0])
    a = sigmoid(C, A=0.7, B=1.5, C_mid=20.0, R0=0.1)
    b = sigmoid(C * 3.6e15, A=0.7, B=1.5, C_mid=20.0 * 3.6e15, R0=0.1)
    np.testing.assert_allclose(a, b, rtol=1e-12)


def test_entropy_law_hand_values():
    # R = -a exp(H) + b: at H = 0 the ceiling -a + b; at H = ln 2, -2a + b
    assert entropy_law(np.array([0.0]), a=0.3, b=0.9)[0] == pytest.approx(0.6)
    assert entropy_law(np.array([math.log(2.0)]), a=0.3, b=0.9)[0] == pytest.approx(0.3)
    assert LAWS["entropy"].asymptote({"a": 0.3, "b": 0.9}) == pytest.approx(0.6)


def test_power_law_hand_values():
    # R = A - D / C^B: A = 1, D = 2, B = 0.5 at C = 4 gives 1 - 2 / 2 = 0
    assert power_law(np.array([4.0]), A=1.0, D=2.0, B=0.5)[0] == pytest.approx(0.0)
    assert power_law(np.array([100.0]), A=1.0, D=2.0, B=0.5)[0] == pytest.approx(0.8)


def test_exp_power_law_hand_values():
    # coverage = exp(a k^b): a = -0.5, b = -0.5 at k = 1 and k = 4
    assert exp_power_law(np.array([1.0]), a=-0.5, b=-0.5)[0] == pytest.approx(math.exp(-0.5))
    assert exp_power_law(np.array([4.0]), a=-0.5, b=-0.5)[0] == pytest.approx(math.exp(-0.25))
    assert exp_power_law(np.array([1e9]), a=-0.5, b=-0.5)[0] == pytest.approx(1.0, abs=1e-4)


def test_registry_is_literal_and_complete():
    assert set(LAWS) == {"sigmoid", "creep", "entropy", "power", "pass_at_k"}
    assert LAWS["sigmoid"].params == ("A", "B", "C_mid", "R0")
