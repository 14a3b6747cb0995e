import pytest

from pocketlib import seqs


def test_chunk():
    assert seqs.chunk([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
    assert seqs.chunk([], 3) == []
    assert seqs.chunk("abc", 3) == [["a", "b", "c"]]
    with pytest.raises(ValueError):
        seqs.chunk([1], 0)


def test_flatten():
    assert seqs.flatten([1, [2, (3, [4])], 5]) == [1, 2, 3, 4, 5]
    assert seqs.flatten([]) == []
    assert seqs.flatten(["ab", ["c"]]) == ["ab", "c"]


def test_window():
    assert seqs.window([1, 2, 3, 4], 2) == [(1, 2), (2, 3), (3, 4)]
    assert seqs.window([1, 2, 3, 4, 5], 3, step=2) == [(1, 2, 3), (3, 4, 5)]
    assert seqs.window([1, 2], 3) == []
    assert seqs.window([1, 2, 3], 3) == [(1, 2, 3)]


def test_unique():
    assert seqs.unique([3, 1, 3, 2, 1]) == [3, 1, 2]
    assert seqs.unique(["a", "B", "A", "b"], key=str.lower) == ["a", "B"]


def test_rotate():
    assert seqs.rotate([1, 2, 3, 4], 1) == [2, 3, 4, 1]
    assert seqs.rotate([1, 2, 3, 4], -1) == [4, 1, 2, 3]
    assert seqs.rotate([1, 2, 3], 5) == [3, 1, 2]
    assert seqs.rotate([], 2) == []


def test_binary_search():
    xs = [1, 3, 5, 7, 9, 11]
    assert [seqs.binary_search(xs, x) for x in xs] == [0, 1, 2, 3, 4, 5]
    assert seqs.binary_search(xs, 4) == -1
    assert seqs.binary_search(xs, 12) == -1
    assert seqs.binary_search(xs, 0) == -1
    assert seqs.binary_search([], 1) == -1


def test_merge_sorted():
    assert seqs.merge_sorted([1, 4, 6], [2, 3, 7, 8]) == [1, 2, 3, 4, 6, 7, 8]
    assert seqs.merge_sorted([], [1]) == [1]
    assert seqs.merge_sorted([1, 2], []) == [1, 2]


def test_group_by():
    assert seqs.group_by(["apple", "avocado", "banana"], lambda s: s[0]) == {
        "a": ["apple", "avocado"], "b": ["banana"]
    }


def test_partition():
    assert seqs.partition(range(6), lambda x: x % 2 == 0) == ([0, 2, 4], [1, 3, 5])


def test_run_length():
    encoded = seqs.run_length_encode("aaabccdd")
    assert encoded == [("a", 3), ("b", 1), ("c", 2), ("d", 2)]
    assert "".join(seqs.run_length_decode(encoded)) == "aaabccdd"
    assert seqs.run_length_encode([]) == []
