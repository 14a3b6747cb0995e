import math

import pytest

from pocketlib import stats


def test_mean():
    assert stats.mean([1, 2, 3, 4]) == 2.5
    with pytest.raises(ValueError):
        stats.mean([])


def test_median():
    assert stats.median([3, 1, 2]) == 2
    assert stats.median([4, 1, 3, 2]) == 2.5
    assert stats.median([5]) == 5
    with pytest.raises(ValueError):
        stats.median([])


def test_mode():
    assert stats.mode([1, 2, 2, 3]) == 2
    assert stats.mode(["b", "a", "a", "b"]) == "b"
    assert stats.mode([7]) == 7


def test_variance():
    assert stats.variance([2, 4, 4, 4, 5, 5, 7, 9]) == 4.0
    assert stats.variance([1, 2, 3, 4], sample=True) == pytest.approx(5 / 3)
    with pytest.raises(ValueError):
        stats.variance([1], sample=True)


def test_stdev():
    assert stats.stdev([2, 4, 4, 4, 5, 5, 7, 9]) == 2.0
    assert stats.stdev([1, 2, 3, 4], sample=True) == pytest.approx(math.sqrt(5 / 3))


def test_percentile():
    xs = [15, 20, 35, 40, 50]
    assert stats.percentile(xs, 0) == 15
    assert stats.percentile(xs, 100) == 50
    assert stats.percentile(xs, 50) == 35
    assert stats.percentile(xs, 40) == 29.0
    assert stats.percentile([1, 2], 25) == 1.25
    with pytest.raises(ValueError):
        stats.percentile(xs, 101)


def test_moving_average():
    assert stats.moving_average([1, 2, 3, 4, 5], 2) == [1.5, 2.5, 3.5, 4.5]
    assert stats.moving_average([1, 2, 3], 3) == [2.0]
    assert stats.moving_average([1, 2], 3) == []
    assert stats.moving_average([4, 8], 1) == [4.0, 8.0]


def test_zscores():
    assert stats.zscores([2, 4, 4, 4, 5, 5, 7, 9]) == [-1.5, -0.5, -0.5, -0.5, 0.0, 0.0, 1.0, 2.0]
    assert stats.zscores([3, 3]) == [0.0, 0.0]


def test_histogram():
    assert stats.histogram([0, 1, 2, 3, 4, 5, 10], 5, 0, 10) == [2, 2, 2, 0, 1]
    assert stats.histogram([-1, 11], 2, 0, 10) == [0, 0]
    assert stats.histogram([10], 2, 0, 10) == [0, 1]
    with pytest.raises(ValueError):
        stats.histogram([1], 0, 0, 1)
