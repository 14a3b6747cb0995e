"""A least-recently-used cache with hit statistics."""

from collections import OrderedDict


class LRUCache:
    """Maps keys to values, keeping at most `capacity` entries; the least recently used entry
    (read or written) is evicted first."""

    def __init__(self, capacity):
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.hits = 0
        self.misses = 0
        self._data = OrderedDict()

    def get(self, key, default=None):
        if key in self._data:
            self._data.move_to_end(key)
            self.hits += 1
            return self._data[key]
        self.misses += 1
        return default

    def put(self, key, value):
        if key in self._data:
            self._data.move_to_end(key)
        self._data[key] = value
        if len(self._data) > self.capacity:
            self._data.popitem(last=False)

    def __contains__(self, key):
        return key in self._data

    def __len__(self):
        return len(self._data)

    def keys(self):
        """Keys from least to most recently used."""
        return list(self._data)

    def hit_rate(self):
        """Fraction of get() calls that found their key (0.0 before any call)."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0
