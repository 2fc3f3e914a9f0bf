"""The video session's propagation: prompts become conditioning memories, then every object is
tracked frame by frame, forward and backward, with progress, cancel, resume and events.

Part of :class:`~sam2_plugins.video.session.VideoSession` (a mixin of it, kept in its own module
for size): the methods read and update the session's own state.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np
import torch

from ..cancel import is_cancelled
from ..model.common import resize_bilinear
from ..model.sam2 import NO_OBJ_SCORE
from .passes import PassProgress
from .results import FrameResult
from .stores import FrameOutput, return_freed_memory

ProgressFn = Callable[[int, int], Any]
EventsFn = Callable[[FrameResult], "int | None"]


class PropagationMixin:
    """``propagate`` and ``propagate_all`` of a :class:`VideoSession`."""

    @torch.inference_mode()
    def _consolidate_prompts(self, keep_progress: bool = False) -> None:
        """Encode memories of newly prompted frames and make them conditioning frames (new prompts
        make an earlier propagation's record stale, unless the caller goes on with it)."""
        if not self.tracks:
            raise RuntimeError("nothing to propagate: add points, a box or a mask on some frame first")
        with self.model.precision():
            prompted: dict[int, list[FrameOutput]] = {}  # frame -> outputs prompted since the last run
            for track in self.tracks.values():
                for frame, out in track.pending.items():
                    prompted.setdefault(frame, []).append(out)
            for frame, outs in sorted(prompted.items()):
                # memories still missing; with the non-overlap rule, all of the frame's (they interact)
                exclusive = self.tracker.non_overlap_memory and len(outs) > 1
                todo = outs if exclusive else [o for o in outs if o.maskmem_features is None]
                if todo:
                    self.tracker.encode_prompted(frame, todo)
            if prompted and not keep_progress:
                self.progress = None
            for track in self.tracks.values():
                track.commit()

    def propagate(
        self,
        start: int | None = None,
        *,
        reverse: bool = False,
        max_frames: int | None = None,
        progress: ProgressFn | None = None,
        cancel: Any = None,
    ) -> Iterator[FrameResult]:
        """Track every object through the video, yielding each visited frame's masks.

        ``start`` defaults to the earliest prompted frame; ``max_frames`` limits how many frames
        after ``start`` are tracked. ``progress(done, total)`` is called after each frame;
        ``cancel`` (a ``threading.Event`` or a callable returning True) stops between frames,
        keeping the frames already done.
        """
        if start is not None:
            self.check_frame(start)
        if max_frames is not None and (not isinstance(max_frames, (int, np.integer)) or max_frames < 0):
            raise ValueError(f"max_frames must be a non-negative integer, got {max_frames!r}")
        self._consolidate_prompts()
        self.progress = None  # only propagate_all keeps a resumable record
        order = self._processing_order(start, reverse, max_frames)
        return self._propagate(order, reverse, progress, cancel)

    def propagate_all(self, *, onward_only: bool = False, resume: bool = False, events: EventsFn | None = None,
                      progress: ProgressFn | None = None, cancel: Any = None) -> Iterator[FrameResult]:
        """Forward from the earliest prompted frame to the end, then backward from it to frame 0.

        ``onward_only=True`` re-tracks only from the earliest frame prompted since the last
        propagation onward (an approximation: earlier frames keep their masks).
        ``resume=True`` goes on with an interrupted (cancelled, or saved and reloaded)
        ``propagate_all`` where it stopped, when no prompt changed since: the frames it tracks
        then are those an uninterrupted run would have tracked, with the same masks.
        ``events(result)`` is called after each frame of the forward pass; it may edit the session
        (a division, a new object: see :class:`~sam2_plugins.video.cells.CellEvents`) and return the
        frame to go on from, which is tracked again with the edits.
        """
        pending = [f for t in self.tracks.values() for f in t.pending]
        tracked_before = any(t.tracked for t in self.tracks.values())
        self._consolidate_prompts()
        if onward_only and pending and tracked_before:
            self.progress = None
            passes = [(self._processing_order(min(pending), False, None), False)]
        else:
            if not (resume and self.progress is not None):
                self.progress = PassProgress.start(min(f for t in self.tracks.values() for f in t.cond))
            passes = self.progress.passes(self.num_frames)
        total = sum(len(order) for order, _ in passes)
        done = 0

        def step_progress(_d, _t):
            nonlocal done
            done += 1
            if progress is not None:
                progress(done, total)

        for order, rev in passes:
            while order:
                restart = None
                for result in self._propagate(order, rev, step_progress, cancel):
                    yield result
                    restart = None if events is None or rev else events(result)
                    if restart is not None:
                        break
                if restart is None:
                    break
                self._consolidate_prompts(keep_progress=True)
                if self.progress is not None:
                    self.progress.forward_next = restart
                order = list(range(restart, self.num_frames))
                total += len(order)

    def _processing_order(self, start: int | None, reverse: bool, max_frames: int | None) -> list[int]:
        if start is None:
            start = min(f for t in self.tracks.values() for f in t.cond)
        n = self.num_frames
        span = n if max_frames is None else max_frames
        if reverse:
            end = max(start - span, 0)
            return list(range(start, end - 1, -1)) if start > 0 else []
        return list(range(start, min(start + span, n - 1) + 1))

    def _propagate(self, order: list[int], reverse: bool, progress, cancel) -> Iterator[FrameResult]:
        total = len(order)
        for done, frame in enumerate(order, start=1):
            if is_cancelled(cancel):
                return
            self.loader.prefetch([f for f in order[done : done + self.loader.depth] if f not in self.feature_cache])
            result = self._track_frame(frame, reverse)
            if self.progress is not None:  # the frame is done: an interrupted run goes on after it
                self.progress.advance(frame, reverse)
            yield result
            if progress is not None:
                progress(done, total)

    @torch.inference_mode()
    def _track_frame(self, frame: int, reverse: bool) -> FrameResult:
        alive = [t for t in self.tracks.values() if t.alive(frame)]
        todo = [t for t in alive if frame not in t.cond]
        outs_by_track: dict[int, FrameOutput] = {}
        if todo:
            with self.model.precision():
                outs = self.tracker.step(todo, frame, is_init_cond_frame=False, reverse=reverse, run_mem_encoder=True)
            outs_by_track = {t.obj_id: out for t, out in zip(todo, outs)}
        outs: list[FrameOutput | None] = []
        for track in self.tracks.values():
            out = outs_by_track.get(track.obj_id)
            if track.alive(frame):
                track.record_tracked(frame, reverse, out)
                out = out if out is not None else track.cond[frame]
            outs.append(out)
        lows = self._low_res(outs)  # (N, 1, S/4, S/4)
        absent = torch.full((1,), NO_OBJ_SCORE, device=lows.device)
        scores = torch.cat([absent if o is None else o.object_score_logits.reshape(1).to(lows.device)
                            for o in outs]).float()  # (N,)
        logits = resize_bilinear(lows, (self.height, self.width))[:, 0]  # (N, H, W), upsampled where the model runs
        # one copy to the host for all objects and all three (not one wait for the GPU per object or per part)
        host = torch.cat([lows.flatten(), scores, logits.flatten()]).numpy(force=True)
        host_lows, host_scores, host_logits = np.split(host, [lows.numel(), lows.numel() + len(outs)])
        for track, low, score, out in zip(self.tracks.values(), host_lows.reshape(lows.shape), host_scores, outs):
            if out is None:
                self.results.drop_frame(frame, track.obj_id)
            else:
                self.results.put(frame, track.obj_id, low, float(score))
        return_freed_memory()  # each tracked frame, also in streaming sessions
        return FrameResult(frame, self.object_ids, host_logits.reshape(logits.shape))
