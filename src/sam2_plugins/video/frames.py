"""Reads and preprocesses video frames on demand, with a small background prefetch."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

import torch

from ..preprocess import to_model_input
from ..sources import FrameSource


class FrameLoader:
    """Frame index -> model input (1, 3, S, S); frames announced by :meth:`prefetch` load in a thread.

    ``key_fn`` (e.g. a digest for an on-disk feature cache) runs on the CPU copy in the same
    thread, so :meth:`get_with_key` costs no extra read or device round trip.
    """

    def __init__(self, source: FrameSource, size: int, device: torch.device, depth: int = 2,
                 key_fn: Callable[[torch.Tensor], str] | None = None) -> None:
        self.source = source
        self.size = size
        self.device = device
        self.depth = depth
        self.key_fn = key_fn
        self._pending: dict[int, Future] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sam2-prefetch") if depth > 0 else None

    def _load(self, frame: int) -> tuple[torch.Tensor, str | None]:
        pixels = to_model_input(self.source.read(frame), self.size, "cpu")
        key = self.key_fn(pixels) if self.key_fn is not None else None
        # page-locked on CUDA: the upload then runs without a staging copy and overlaps the host
        return (pixels.pin_memory() if self.device.type == "cuda" else pixels), key

    def get_with_key(self, frame: int) -> tuple[torch.Tensor, str | None]:
        """(model input on the device, its key or None)."""
        with self._lock:
            fut = self._pending.pop(frame, None)
        pixels, key = fut.result() if fut is not None else self._load(frame)
        return pixels.to(self.device, non_blocking=pixels.is_pinned()), key

    def get(self, frame: int) -> torch.Tensor:
        return self.get_with_key(frame)[0]

    def prefetch(self, frames) -> None:
        if self._pool is None:
            return
        with self._lock:
            for frame in frames:
                if frame not in self._pending:
                    self._pending[frame] = self._pool.submit(self._load, frame)
            # keep only a few futures around
            while len(self._pending) > 2 * self.depth + 2:
                self._pending.pop(next(iter(self._pending)))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
