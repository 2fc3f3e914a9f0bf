"""Training clips drawn ahead of the trainer, by background processes.

With ``TrainSettings(per_step_clips=True)`` the ``d``-th clip of a run (step ``d //
clips_per_step``) is drawn from a random stream of its own, seeded by (seed, rank, d). It then
depends on nothing else: the same run draws the same clips in the trainer's process or in any
number of data processes, and a resumed run sees the clips an uninterrupted one would. That
is what lets :class:`ClipFeed` prepare the next clips on other cores while the trainer runs
the current step.

    feed = ClipFeed(dataset, size=256, settings=s, rank=0, start=d, workers=2)
    clip = feed.next()      # clip d, then d + 1, ...
    feed.close()

Worker ``w`` of ``n`` draws clips ``start + w``, ``start + w + n``, ... into its own bounded
queue, so the trainer reads them back in order without any sorting.
"""

from __future__ import annotations

import itertools
import multiprocessing
import queue
import traceback
from dataclasses import fields, replace
from typing import Any

import numpy as np
import torch

from .data import Clip, ClipSettings, VideoDataset, draw_clip

_STREAM = 0x0C11_9F33  # separates the clip streams from any other stream seeded by (seed, rank, index)
_QUEUE_DEPTH = 2  # clips prepared ahead per worker
_POLL_S = 1.0


def piecewise(points, step: int) -> float:
    """Linear interpolation between (step, value) breakpoints, constant outside them."""
    points = sorted(points)
    if step <= points[0][0]:
        return float(points[0][1])
    for (s0, v0), (s1, v1) in itertools.pairwise(points):
        if step <= s1:
            return float(v0 + (v1 - v0) * (step - s0) / max(1, s1 - s0))
    return float(points[-1][1])


def clip_settings_at(settings: Any, step: int) -> ClipSettings:
    """The clip settings of ``step`` (a :class:`TrainSettings` with a single-frame schedule applies it)."""
    if settings.image_prob_schedule:
        return replace(settings.clip, image_prob=piecewise(settings.image_prob_schedule, step))
    return settings.clip


def clip_rng(seed: int, rank: int, index: int) -> np.random.Generator:
    """The random stream of a run's ``index``-th clip."""
    return np.random.default_rng((int(seed), int(rank), int(index), _STREAM))


def draw_indexed_clip(dataset: VideoDataset, size: int, settings: Any, rank: int, index: int) -> Clip:
    """The ``index``-th clip of a run with ``per_step_clips`` (a pure function of its arguments)."""
    step = index // settings.clips_per_step
    return draw_clip(dataset, size, clip_settings_at(settings, step), clip_rng(settings.seed, rank, index))


class _Packed:
    """A tensor as a C-ordered array plus the dimension order that gives its memory layout back.

    Plain arrays travel through the pipe by value (torch's shared-memory tensors would need the
    sending process alive until each is received); the layout is kept because it decides which
    kernels run (a channels-last image and a contiguous one give different float rounding).
    """

    def __init__(self, t: torch.Tensor) -> None:
        order = sorted(range(t.ndim), key=lambda i: -t.stride(i))  # outermost dimension first
        self.array = t.permute(order).contiguous().numpy()
        self.back = [order.index(i) for i in range(t.ndim)]

    def unpack(self) -> torch.Tensor:
        return torch.from_numpy(self.array).permute(self.back)


def _pack(clip: Clip) -> dict[str, Any]:
    return {f.name: (_Packed(v) if isinstance(v := getattr(clip, f.name), torch.Tensor) else v) for f in fields(clip)}


def _unpack(d: dict[str, Any]) -> Clip:
    return Clip(**{k: (v.unpack() if isinstance(v, _Packed) else v) for k, v in d.items()})


def _produce(worker: int, workers: int, dataset: VideoDataset, size: int, settings: Any, rank: int,
             start: int, out, stop) -> None:
    torch.set_num_threads(1)
    end = settings.steps * settings.clips_per_step
    for index in itertools.count(start + worker, workers):
        if index >= end or stop.is_set():
            return
        try:
            item: tuple[int, Any] = (index, _pack(draw_indexed_clip(dataset, size, settings, rank, index)))
        except Exception:  # noqa: BLE001 - reported by the trainer, which stops
            item = (index, traceback.format_exc())
        while not stop.is_set():
            try:
                out.put(item, timeout=_POLL_S)
                break
            except queue.Full:
                continue
        if isinstance(item[1], str):
            return


class ClipFeed:
    """A run's clips, in order from ``start``, drawn by ``workers`` background processes."""

    def __init__(self, dataset: VideoDataset, size: int, settings: Any, rank: int, start: int,
                 workers: int) -> None:
        if workers < 1:
            raise ValueError(f"a clip feed needs at least one data process, got {workers}")
        if not settings.per_step_clips:
            raise ValueError("data processes need per_step_clips=True: otherwise clips come from the "
                             "trainer's own random stream, which other processes cannot share")
        ctx = multiprocessing.get_context("spawn")  # a forked child could inherit a locked thread pool
        self.start = self.next_index = start
        self._stop = ctx.Event()
        self._queues = [ctx.Queue(maxsize=_QUEUE_DEPTH) for _ in range(workers)]
        self._procs = [
            ctx.Process(target=_produce, args=(w, workers, dataset, size, settings, rank, start, q, self._stop),
                        daemon=True, name=f"sam2-clips-{w}")
            for w, q in enumerate(self._queues)
        ]
        try:
            for p in self._procs:
                p.start()
        except Exception as err:
            self.close()
            raise RuntimeError(f"cannot start the data processes ({err}): the dataset must be picklable, "
                               "or train with data_workers=0") from err

    def next(self) -> Clip:
        """Clip ``next_index`` of the run (then moves on to the following one)."""
        index = self.next_index
        k = (index - self.start) % len(self._queues)
        q, proc = self._queues[k], self._procs[k]
        while True:
            try:
                got, payload = q.get(timeout=_POLL_S)
                break
            except queue.Empty:
                if not proc.is_alive() and q.empty():  # (a finished process may have just sent its last clip)
                    raise RuntimeError(
                        f"the data process drawing training clips stopped (exit code {proc.exitcode}) before "
                        f"clip {index}; its error, if any, is printed above. A script that trains with data "
                        "processes must run its training under `if __name__ == '__main__':`") from None
        if isinstance(payload, str):
            raise RuntimeError(f"drawing training clip {index} failed in a data process:\n{payload}")
        if got != index:  # pragma: no cover - guards the round-robin bookkeeping
            raise RuntimeError(f"internal error: the data process sent clip {got}, expected {index}")
        self.next_index += 1
        return _unpack(payload)

    def close(self) -> None:
        """Stop the data processes (clips not yet read are dropped)."""
        self._stop.set()
        for q in self._queues:  # unblock writers, so that they see the stop
            try:
                while True:
                    q.get_nowait()
            except (queue.Empty, OSError, ValueError):
                pass
        for p in self._procs:
            if p.pid is not None:
                p.join(timeout=5)
                if p.is_alive():
                    p.terminate()
                    p.join(timeout=5)
        for q in self._queues:
            q.close()
            q.cancel_join_thread()
        self._procs = []

    def __enter__(self) -> ClipFeed:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
