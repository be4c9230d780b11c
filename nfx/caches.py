"""A bounded least-recently-used cache of values computed on demand, keyed by tuples.

The engine keeps its targets in one (a target of a large image is big) and the feed-forward
network its style vectors (keyed by picture hashes, which `functools.lru_cache` cannot take
from a PIL image). Torch-free, so every layer may use it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any


class BoundedCache:
    """Least-recently-used values, bounded by count."""

    def __init__(self, capacity: int = 64) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple, Any] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, key: tuple, compute: Callable[[], Any]) -> Any:
        if key in self._items:
            self.hits += 1
            self._items.move_to_end(key)
            return self._items[key]
        self.misses += 1
        value = compute()
        self._items[key] = value
        if len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        self._items.clear()
