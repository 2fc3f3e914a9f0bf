"""A least-recently-used cache bounded by the bytes its values hold.

Image embeddings, a video's encoder features and memory-conditioned features are all kept
this way: what was used last stays, the oldest goes once the budget is exceeded. By default the
newest entry always stays (a value read right after it is made need not be made twice).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ByteLRU(Generic[K, V]):
    """Key -> value, evicting the least recently used beyond ``max_bytes`` (``size_of(value)`` each).

    Safe to use from a prefetch thread and the main thread at once.
    """

    def __init__(self, max_bytes: int, size_of: Callable[[V], int], *, keep_newest: bool = True) -> None:
        if max_bytes < 0:
            raise ValueError(f"a cache budget cannot be negative, got {max_bytes} bytes")
        self.max_bytes = max_bytes
        self._size_of = size_of
        self._keep = 1 if keep_newest else 0
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self.hits += 1
            self._items.move_to_end(key)
            return item[0]

    def put(self, key: K, value: V) -> None:
        size = self._size_of(value)
        with self._lock:
            if key in self._items:
                self._bytes -= self._items.pop(key)[1]
            self._items[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes and len(self._items) > self._keep:
                self._bytes -= self._items.popitem(last=False)[1][1]

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    @property
    def nbytes(self) -> int:
        return self._bytes
