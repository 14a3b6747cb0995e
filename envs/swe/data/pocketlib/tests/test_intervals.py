from pocketlib import intervals


def test_normalize():
    assert intervals.normalize((5, 2)) == (2, 5)
    assert intervals.normalize((2, 5)) == (2, 5)


def test_overlaps():
    assert intervals.overlaps((1, 3), (2, 4))
    assert intervals.overlaps((1, 3), (3, 4))
    assert not intervals.overlaps((1, 2), (3, 4))
    assert intervals.overlaps((1, 10), (4, 5))


def test_merge():
    assert intervals.merge([(1, 3), (2, 6), (8, 10), (15, 18)]) == [(1, 6), (8, 10), (15, 18)]
    assert intervals.merge([(1, 4), (4, 5)]) == [(1, 5)]
    assert intervals.merge([(5, 1), (0, 0)]) == [(0, 0), (1, 5)]
    assert intervals.merge([(1, 10), (2, 3)]) == [(1, 10)]
    assert intervals.merge([]) == []


def test_total_length():
    assert intervals.total_length([(1, 3), (2, 6), (8, 10)]) == 7
    assert intervals.total_length([]) == 0


def test_intersection():
    assert intervals.intersection((1, 5), (3, 8)) == (3, 5)
    assert intervals.intersection((1, 2), (3, 4)) is None
    assert intervals.intersection((1, 3), (3, 4)) == (3, 3)


def test_contains():
    assert intervals.contains((1, 3), 1)
    assert intervals.contains((1, 3), 3)
    assert not intervals.contains((1, 3), 4)


def test_gaps():
    assert intervals.gaps([(2, 3), (5, 6)], 0, 10) == [(0, 2), (3, 5), (6, 10)]
    assert intervals.gaps([(0, 10)], 0, 10) == []
    assert intervals.gaps([], 1, 4) == [(1, 4)]
    assert intervals.gaps([(-5, 2), (20, 30)], 0, 10) == [(2, 10)]
