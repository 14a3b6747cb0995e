import pytest

from pocketlib.cache import LRUCache


def test_get_and_put():
    c = LRUCache(2)
    c.put("a", 1)
    assert c.get("a") == 1
    assert c.get("missing") is None
    assert c.get("missing", 0) == 0


def test_evicts_least_recently_used():
    c = LRUCache(2)
    c.put("a", 1)
    c.put("b", 2)
    c.get("a")
    c.put("c", 3)
    assert "b" not in c
    assert "a" in c and "c" in c
    assert len(c) == 2


def test_put_refreshes_recency():
    c = LRUCache(2)
    c.put("a", 1)
    c.put("b", 2)
    c.put("a", 10)
    c.put("c", 3)
    assert c.keys() == ["a", "c"]
    assert c.get("a") == 10


def test_capacity_one():
    c = LRUCache(1)
    c.put("a", 1)
    c.put("b", 2)
    assert c.keys() == ["b"]
    with pytest.raises(ValueError):
        LRUCache(0)


def test_hit_rate():
    c = LRUCache(3)
    assert c.hit_rate() == 0.0
    c.put("a", 1)
    c.get("a")
    c.get("a")
    c.get("b")
    assert c.hit_rate() == pytest.approx(2 / 3)
    assert (c.hits, c.misses) == (2, 1)
