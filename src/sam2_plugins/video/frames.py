"""Reads and preprocesses video frames on demand, with a small background prefetch."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

import torch

from ..preprocess import to_model_input
from ..sources import FrameSource


class FrameLoader:
    """Frame index -> model input (1, 3, S, S); frames announced by :meth:`prefetch` load in a thread."""

    def __init__(self, source: FrameSource, size: int, device: torch.device, depth: int = 2) -> None:
        self.source = source
        self.size = size
        self.device = device
        self.depth = depth
        self._pending: dict[int, Future] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sam2-prefetch") if depth > 0 else None

    def _load(self, frame: int) -> torch.Tensor:
        pixels = to_model_input(self.source.read(frame), self.size, "cpu")
        # page-locked on CUDA: the upload then runs without a staging copy and overlaps the host
        return pixels.pin_memory() if self.device.type == "cuda" else pixels

    def get(self, frame: int) -> torch.Tensor:
        with self._lock:
            fut = self._pending.pop(frame, None)
        pixels = fut.result() if fut is not None else self._load(frame)
        return pixels.to(self.device, non_blocking=pixels.is_pinned())

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
