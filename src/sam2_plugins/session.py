"""The video session: prompts on any frame, propagation through SAM 2's memory, results on demand.

    session = model.open_video("cells.tif")
    session.add_points(0, obj_id=1, points=[[35, 30]], labels=[1])
    for result in session.propagate():
        ...  # result.frame_index, result.object_ids, result.logits (N, H, W)
    labels = session.labels()  # (T, H, W), one id per pixel

Frames are read and preprocessed on demand (with a small prefetch), encoder features live
in a byte-bounded LRU cache (``feature_cache_mb``), and per-frame memories in a byte-bounded
pool that spills to disk (``memory_mb``; what the last two frames read stays in RAM even
beyond it, as many objects at full resolution need: 64 objects of tiny read ~350 MB a frame).
Tracking reads only the last few frames' memories, so the default pool is small: older
records come back from disk only around a correction (a click on their frame, or a
propagation that starts next to it: a few small files).

``non_overlap_memory`` (default: the model config's ``non_overlap_masks_for_mem_enc``) gives
each pixel to at most one object in what the memory encoder sees, so touching objects (cells
in a colony) do not drift into each other's tracks. It shapes memory only: a frame's reported
masks are those its decoder made, and the rule acts through the frames that follow.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np
import torch

from .cancel import is_cancelled
from .frames import FrameLoader
from .memory import FeatureCache, FrameOutput, SpillPool, return_freed_memory
from .model.common import resize_bilinear
from .model.sam2 import NO_OBJ_SCORE, ImageFeatures, Sam2Model
from .prompts import validate_box, validate_mask, validate_points
from .results import FrameResult, ResultStore
from .sources import StreamSource, open_source
from .tracker import ObjectTrack, PointPrompt, Tracker

ProgressFn = Callable[[int, int], Any]

MB = 1 << 20


class VideoSession:
    """Interactive SAM 2 tracking over one video (see module docs)."""

    def __init__(
        self,
        model: Sam2Model,
        source: Any,
        *,
        normalizer=None,
        channels=None,
        feature_cache_mb: float = 512,
        memory_mb: float = 64,
        spill_dir: str | None = None,
        prefetch: int = 2,
        non_overlap_memory: bool | None = None,
    ) -> None:
        self.model = model
        if isinstance(source, StreamSource):
            self.source = source  # frames arrive later (see sam2_plugins.stream)
            self.height = self.width = None
        else:
            self.source = open_source(source, normalizer=normalizer, channels=channels)
            if self.source.num_frames == 0:
                raise ValueError(f"{self.source.description} has no frames")
            self.height, self.width = self.source.height, self.source.width
        self.feature_cache = FeatureCache(int(feature_cache_mb * MB))
        self.pool = SpillPool(int(memory_mb * MB), spill_dir)
        self.loader = FrameLoader(self.source, model.image_size, model.device, prefetch)
        self.tracker = Tracker(model, self._features, lambda: self.num_frames, self.pool)
        if non_overlap_memory is not None:  # default: the model config's non_overlap_masks_for_mem_enc
            self.tracker.non_overlap_memory = bool(non_overlap_memory)
        self.results = ResultStore(self.height, self.width)
        self.tracks: dict[int, ObjectTrack] = {}

    # ------------------------------------------------------------------ basics
    @property
    def num_frames(self) -> int:
        return self.source.num_frames

    @property
    def object_ids(self) -> list[int]:
        return list(self.tracks)

    @property
    def normalizer(self):
        """The intensity normalisation used for this video (record it to reproduce results)."""
        return self.source.normalizer

    def close(self) -> None:
        self.loader.close()
        self.pool.close()
        self.source.close()

    def __enter__(self) -> "VideoSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _check_frame(self, frame: int) -> int:
        if isinstance(frame, bool) or not isinstance(frame, (int, np.integer)):
            raise TypeError(f"frame index must be an integer, got {frame!r}")
        if frame < 0 or frame >= self.num_frames:
            raise IndexError(f"frame {frame} is out of range for a video of {self.num_frames} frames")
        return int(frame)

    def _check_object(self, obj_id: int) -> int:
        if obj_id not in self.tracks:
            raise KeyError(f"unknown object id {obj_id}; objects are {self.object_ids}")
        return obj_id

    @staticmethod
    def _check_new_id(obj_id: Any) -> int:
        if isinstance(obj_id, bool) or not isinstance(obj_id, (int, np.integer)) or obj_id < 0:
            raise ValueError(f"object ids are non-negative integers, got {obj_id!r}")
        return int(obj_id)

    def _features(self, frame: int) -> ImageFeatures:
        feats = self.feature_cache.get(frame)
        if feats is None:
            pixels = self.loader.get(frame)
            with torch.inference_mode(), self.model.precision():
                feats = self.model.encode_image(pixels)
            self.feature_cache.put(frame, feats)
        return feats

    # ------------------------------------------------------------------ prompts
    def add_points(self, frame: int, obj_id: int, points, labels, *, clear: bool = True) -> FrameResult:
        """Clicks ((x, y) pixels; label 1 object, 0 background) for one object on one frame.

        Replaces that object's earlier clicks on the frame unless ``clear=False``. Returns the
        masks of every object on the frame.
        """
        frame, obj_id = self._check_frame(frame), self._check_new_id(obj_id)
        coords, labs = validate_points(points, labels, (self.height, self.width))
        if coords is None:
            raise ValueError("no points given: pass at least one (x, y) click")
        return self._add_point_prompt(frame, obj_id, coords, labs, clear)

    def add_box(self, frame: int, obj_id: int, box, *, points=None, labels=None) -> FrameResult:
        """A box (x0, y0, x1, y1) in pixels, optionally with clicks, for one object on one frame."""
        frame, obj_id = self._check_frame(frame), self._check_new_id(obj_id)
        box_xyxy = validate_box(box, (self.height, self.width))
        coords, labs = validate_points(points, labels, (self.height, self.width))
        all_coords = box_xyxy.reshape(2, 2)
        all_labels = np.array([2, 3], np.int32)
        if coords is not None:
            all_coords, all_labels = np.concatenate([all_coords, coords]), np.concatenate([all_labels, labs])
        return self._add_point_prompt(frame, obj_id, all_coords, all_labels, True)

    def _add_point_prompt(self, frame, obj_id, coords: np.ndarray, labels: np.ndarray, clear: bool) -> FrameResult:
        size = self.model.image_size
        scale = torch.tensor([size / self.width, size / self.height], dtype=torch.float32)
        new = PointPrompt(torch.as_tensor(coords)[None] * scale, torch.as_tensor(labels, dtype=torch.int32)[None])
        track = self.tracks.get(obj_id)
        if not clear and track is not None and frame in track.points:
            old = track.points[frame]
            new = PointPrompt(torch.cat([old.coords, new.coords], 1), torch.cat([old.labels, new.labels], 1))
        return self._run_prompt(frame, obj_id, points=new)

    def add_mask(self, frame: int, obj_id: int, mask) -> FrameResult:
        """A mask (H, W) (bool or 0/1) for one object on one frame."""
        frame, obj_id = self._check_frame(frame), self._check_new_id(obj_id)
        m = torch.as_tensor(validate_mask(mask, (self.height, self.width)), dtype=torch.float32)[None, None]
        size = self.model.image_size
        if m.shape[-2:] != (size, size):
            m = (resize_bilinear(m, (size, size), antialias=True) >= 0.5).float()
        return self._run_prompt(frame, obj_id, mask=m.to(self.model.device))

    @torch.inference_mode()
    def _run_prompt(self, frame: int, obj_id: int, *, points: PointPrompt | None = None,
                    mask: torch.Tensor | None = None) -> FrameResult:
        self._features(frame)  # read + encode first: a bad frame fails before any state changes
        track = self.tracks.get(obj_id) or self.tracker.new_track(obj_id)
        is_init = frame not in track.tracked
        reverse = track.tracked.get(frame, False)
        prev_logits = None
        if points is not None:
            prev = track.latest_output(frame)
            if prev is not None:
                prev_logits = prev.pred_masks.to(self.model.device).clamp(-32.0, 32.0)
        device = self.model.device
        with self.model.precision():
            (out,) = self.tracker.step(
                [track], frame, is_init_cond_frame=is_init, reverse=reverse, run_mem_encoder=False,
                points=None if points is None else PointPrompt(points.coords.to(device), points.labels.to(device)),
                mask=mask, prev_logits=prev_logits,
            )
        # commit
        self.tracks[obj_id] = track
        if points is not None:
            track.points[frame] = points
            track.masks.pop(frame, None)
        else:
            track.masks[frame] = mask
            track.points.pop(frame, None)
        track.pending[frame] = out
        self.results.put(frame, obj_id, out.pred_masks, out.object_score_logits.item())
        return self._frame_result(frame)

    def _low_res(self, outs: list[FrameOutput | None]) -> torch.Tensor:
        """(N, 1, S/4, S/4) float32 low-res logits of these outputs on the model's device (None: absent,
        NO_OBJ_SCORE)."""
        size, device = self.model.image_size // 4, self.model.device
        lows = [out.pred_masks.to(device) if out is not None
                else torch.full((1, 1, size, size), NO_OBJ_SCORE, device=device) for out in outs]
        return torch.cat(lows).float()

    def _frame_result(self, frame: int, lows: torch.Tensor | None = None) -> FrameResult:
        """Masks of every object on a frame from their newest outputs (``lows``: their low-res logits)."""
        if not self.tracks:
            return FrameResult(frame, [], np.zeros((0, self.height, self.width), np.float32))
        if lows is None:
            lows = self._low_res([track.latest_output(frame) for track in self.tracks.values()])
        # upsampled where the model runs (a GPU does 64 objects' 1080p maps at once), one copy back
        logits = resize_bilinear(lows, (self.height, self.width))[:, 0]
        return FrameResult(frame, self.object_ids, logits.cpu().numpy())

    # ------------------------------------------------------------------ editing
    def remove_object(self, obj_id: int) -> None:
        """Forget an object: its prompts, memories and results."""
        track = self.tracks.pop(self._check_object(obj_id))
        track.non_cond.clear()
        self.results.drop_object(obj_id)

    def clear_prompts(self, frame: int | None = None, obj_id: int | None = None) -> None:
        """Remove prompts on one frame (or all frames) of one object (or all objects).

        A frame's prompted result becomes an ordinary tracked frame; an object left with no
        prompt at all is removed.
        """
        if frame is not None:
            frame = self._check_frame(frame)
        ids = [self._check_object(obj_id)] if obj_id is not None else self.object_ids
        for oid in ids:
            track = self.tracks[oid]
            frames = [frame] if frame is not None else sorted(track.prompted_frames() | set(track.pending))
            for f in frames:
                track.points.pop(f, None)
                track.masks.pop(f, None)
                track.pending.pop(f, None)
                out = track.cond.pop(f, None)
                if out is not None:
                    track.non_cond[f] = out
                    track.tracked.pop(f, None)
                else:
                    self.results.drop_frame(f, oid)
            if not track.prompted_frames():
                self.remove_object(oid)

    def reset(self) -> None:
        """Remove every object, prompt and result (cached image features are kept)."""
        for oid in self.object_ids:
            self.remove_object(oid)
        self.results.clear()

    # ------------------------------------------------------------------ propagation
    @torch.inference_mode()
    def _consolidate_prompts(self) -> None:
        """Encode memories of newly prompted frames and make them conditioning frames."""
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
            for track in self.tracks.values():
                for frame, out in sorted(track.pending.items()):
                    track.cond[frame] = out
                track.pending.clear()
                for frame in track.cond:
                    track.non_cond.pop(frame, None)

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
            self._check_frame(start)
        if max_frames is not None and (not isinstance(max_frames, (int, np.integer)) or max_frames < 0):
            raise ValueError(f"max_frames must be a non-negative integer, got {max_frames!r}")
        self._consolidate_prompts()
        order = self._processing_order(start, reverse, max_frames)
        return self._propagate(order, reverse, progress, cancel)

    def propagate_all(self, *, onward_only: bool = False, progress: ProgressFn | None = None,
                      cancel: Any = None) -> Iterator[FrameResult]:
        """Forward from the earliest prompted frame to the end, then backward from it to frame 0.

        ``onward_only=True`` re-tracks only from the earliest frame prompted since the last
        propagation onward (an approximation: earlier frames keep their masks).
        """
        pending = [f for t in self.tracks.values() for f in t.pending]
        tracked_before = any(t.tracked for t in self.tracks.values())
        self._consolidate_prompts()
        if onward_only and pending and tracked_before:
            orders = [(self._processing_order(min(pending), False, None), False)]
        else:
            first = min(f for t in self.tracks.values() for f in t.cond)
            orders = [(self._processing_order(first, False, None), False),
                      (self._processing_order(first, True, None), True)]
        total = sum(len(o) for o, _ in orders)
        done = 0

        def step_progress(_d, _t):
            nonlocal done
            done += 1
            if progress is not None:
                progress(done, total)

        for order, rev in orders:
            if is_cancelled(cancel):
                return
            yield from self._propagate(order, rev, step_progress, cancel)

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
            yield self._track_frame(frame, reverse)
            if progress is not None:
                progress(done, total)

    @torch.inference_mode()
    def _track_frame(self, frame: int, reverse: bool) -> FrameResult:
        todo = [t for t in self.tracks.values() if frame not in t.cond]
        if todo:
            with self.model.precision():
                outs = self.tracker.step(todo, frame, is_init_cond_frame=False, reverse=reverse, run_mem_encoder=True)
            for track, out in zip(todo, outs):
                track.non_cond[frame] = out
        outs = []
        for track in self.tracks.values():
            track.tracked[frame] = reverse
            outs.append(track.cond[frame] if frame in track.cond else track.non_cond[frame])
        lows = self._low_res(outs)
        scores = torch.cat([o.object_score_logits.reshape(1).to(lows.device) for o in outs]).float().tolist()
        # one copy to the host for all objects (not one wait for the GPU per object)
        for track, low, score in zip(self.tracks.values(), lows.cpu().numpy(), scores):
            self.results.put(frame, track.obj_id, low, score)
        return_freed_memory()  # each tracked frame, also in streaming sessions
        return self._frame_result(frame, lows)

    # ------------------------------------------------------------------ read-back
    def mask(self, frame: int, obj_id: int) -> np.ndarray | None:
        """(H, W) bool mask of one object on one frame, or None if that frame has no result for it."""
        logits = self.results.logits(self._check_frame(frame), self._check_object(obj_id))
        return None if logits is None else logits > 0

    def labels(self, frames=None, dtype=np.uint16) -> np.ndarray:
        """(T, H, W) label stack: each pixel holds the id of the most confident object (0: none)."""
        frames = range(self.num_frames) if frames is None else [self._check_frame(f) for f in frames]
        return np.stack([self.results.label_frame(f, dtype) for f in frames])

    def presence(self) -> dict[int, np.ndarray]:
        """Object id -> (T,) object-score logits per frame (> 0: present; NaN: no result yet)."""
        out = {}
        for oid in self.tracks:
            scores = np.full(self.num_frames, np.nan, np.float32)
            for f in self.results.frames():
                s = self.results.score(f, oid)
                if s is not None:
                    scores[f] = s
            out[oid] = scores
        return out
