"""The video session: prompts on any frame, propagation through SAM 2's memory, results on demand.

    session = model.open_video("cells.tif")
    session.add_points(0, obj_id=1, points=[[35, 30]], labels=[1])
    for result in session.propagate():
        ...  # result.frame_index, result.object_ids, result.logits (N, H, W)
    labels = session.labels()  # (T, H, W), one id per pixel

Frames are read and preprocessed on demand (with a small prefetch), encoder features live
in a byte-bounded LRU cache (``feature_cache_mb``) and, with ``feature_dir``, on disk, so a movie
opened again is not encoded again (``feature_counts`` says how many frames were encoded or read
back); per-frame memories in a byte-bounded
pool that spills to disk (``memory_mb``; what the last two frames read stays in RAM even
beyond it). Tracking reads only the last few frames' memories, so the default pool is small.

``non_overlap_memory`` (default: the model config's ``non_overlap_masks_for_mem_enc``) gives
each pixel to at most one object in what the memory encoder sees, so touching objects (cells
in a colony) do not drift into each other's tracks. It shapes memory only: a frame's reported
masks are those its decoder made, and the rule acts through the frames that follow.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..image_predictor import ImageEmbedding
from ..model.common import resize_bilinear
from ..model.sam2 import NO_OBJ_SCORE, ImageFeatures
from ..prompts import validate_box, validate_mask, validate_object_id, validate_points
from ..sources import FrameSource, open_source
from .cells import add_automatic_masks, add_label_image, divide
from .feature_store import FeatureStore
from .frames import FrameLoader
from .lineage import Lineage
from .memory_select import memory_reach
from .passes import PassProgress
from .propagation import PropagationMixin
from .results import FrameResult, ResultStore
from .session_state import SessionStateMixin
from .stores import FeatureCache, FrameOutput, SpillPool
from .track import ObjectTrack, PointPrompt, box_corners, mask_input
from .tracker import Tracker

if TYPE_CHECKING:
    from ..engine import Sam2

MB = 1 << 20
ENDLESS = 1 << 30  # a live stream's length, for SAM 2's pointer window: a long video


class VideoSession(PropagationMixin, SessionStateMixin):
    """Interactive SAM 2 tracking over one video (see module docs; propagation in
    :mod:`.propagation`, saving and restoring in :mod:`.session_state`)."""

    def __init__(
        self,
        model: "Sam2",
        source: Any,
        *,
        normalizer=None,
        channels=None,
        feature_cache_mb: float = 512,
        memory_mb: float = 64,
        spill_dir: str | None = None,
        prefetch: int = 2,
        non_overlap_memory: bool | None = None,
        feature_dir: str | os.PathLike | None = None,
    ) -> None:
        self.model = model
        if isinstance(source, FrameSource) and source.growing:
            self.source = source  # frames arrive later (see sam2_plugins.video.stream)
        else:
            self.source = open_source(source, normalizer=normalizer, channels=channels)
            if self.source.num_frames == 0:
                raise ValueError(f"{self.source.description} has no frames")
        self.feature_cache = FeatureCache(int(feature_cache_mb * MB))
        # on disk too, when asked: a movie opened again is not encoded again (see feature_store)
        self.feature_store = FeatureStore(feature_dir, model) if feature_dir is not None else None
        self.feature_counts = {"encoded": 0, "loaded": 0}  # encoder runs, frames read from feature_dir
        self.pool = SpillPool(int(memory_mb * MB), spill_dir)
        key_fn = FeatureStore.frame_key if self.feature_store is not None else None
        self.loader = FrameLoader(self.source, model.image_size, model.device, prefetch, key_fn)
        self.tracker = Tracker(model.network, self._features, self._memory_horizon, self.pool)
        if non_overlap_memory is not None:  # default: the model config's non_overlap_masks_for_mem_enc
            self.tracker.non_overlap_memory = bool(non_overlap_memory)
        self.results = ResultStore(self.height, self.width)
        self.tracks: dict[int, ObjectTrack] = {}
        self.lineage = Lineage()
        self.progress: PassProgress | None = None

    # ------------------------------------------------------------------ basics
    @property
    def num_frames(self) -> int:
        return self.source.num_frames

    @property
    def height(self) -> int | None:
        """Frame height in pixels (None for a live stream before its first frame)."""
        return self.source.height if self.source.num_frames else None

    @property
    def width(self) -> int | None:
        return self.source.width if self.source.num_frames else None

    @property
    def non_overlap_memory(self) -> bool:
        """Each pixel belongs to at most one object in what the tracker remembers (see module docs)."""
        return self.tracker.non_overlap_memory

    @non_overlap_memory.setter
    def non_overlap_memory(self, value: bool) -> None:
        self.tracker.non_overlap_memory = bool(value)

    def _memory_horizon(self) -> int:
        """The video's length as SAM 2's pointer window sees it."""
        return ENDLESS if self.source.growing else self.num_frames

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

    def check_frame(self, frame: int) -> int:
        if isinstance(frame, bool) or not isinstance(frame, (int, np.integer)):
            raise TypeError(f"frame index must be an integer, got {frame!r}")
        if frame < 0 or frame >= self.num_frames:
            raise IndexError(f"frame {frame} is out of range for a video of {self.num_frames} frames")
        return int(frame)

    def check_object(self, obj_id: int) -> int:
        if obj_id not in self.tracks:
            raise KeyError(f"unknown object id {obj_id}; objects are {self.object_ids}")
        return obj_id

    def _features(self, frame: int) -> ImageFeatures:
        feats = self.feature_cache.get(frame)
        if feats is None:
            pixels, key = self.loader.get_with_key(frame)
            store = self.feature_store
            feats = store.load(key) if store is not None else None
            if feats is not None:
                self.feature_counts["loaded"] += 1
            else:
                with torch.inference_mode(), self.model.precision():
                    feats = self.model.network.encode_image(pixels)
                self.feature_counts["encoded"] += 1
                if store is not None:
                    store.save(key, feats)
            self.feature_cache.put(frame, feats)
            if self.results.height is None:
                self.results.set_frame_size(self.height, self.width)
        return feats

    @torch.inference_mode()
    def frame_embedding(self, frame: int) -> ImageEmbedding:
        """The frame as a single image for ``model.predict_image``: a prompt decoded on it sees no
        memory and changes nothing in the session (a preview, or a check of a frame's content)."""
        feats = self._features(self.check_frame(frame))
        net = self.model.network
        with self.model.precision():
            embed = net.without_memory(feats)
        return ImageEmbedding(ImageFeatures(embed, feats.pos, feats.high_res), (self.height, self.width))

    # ------------------------------------------------------------------ prompts
    def add_points(self, frame: int, obj_id: int, points, labels, *, clear: bool = True,
                   starts_here: bool = False) -> FrameResult:
        """Clicks ((x, y) pixels; label 1 object, 0 background) for one object on one frame.

        Replaces that object's earlier clicks on the frame unless ``clear=False``. Returns the
        masks of every object on the frame. ``starts_here``: a new object that does not exist
        before this frame (a cell born or entering here), so no propagation tracks it earlier.
        """
        frame, obj_id = self.check_frame(frame), validate_object_id(obj_id)
        coords, labs = validate_points(points, labels, (self.height, self.width))
        if coords is None:
            raise ValueError("no points given: pass at least one (x, y) click")
        return self._add_point_prompt(frame, obj_id, coords, labs, clear, starts_here)

    def add_box(self, frame: int, obj_id: int, box, *, points=None, labels=None,
                starts_here: bool = False) -> FrameResult:
        """A box (x0, y0, x1, y1) in pixels, optionally with clicks, for one object on one frame."""
        frame, obj_id = self.check_frame(frame), validate_object_id(obj_id)
        box_xyxy = validate_box(box, (self.height, self.width))
        coords, labs = validate_points(points, labels, (self.height, self.width))
        return self._add_point_prompt(frame, obj_id, *box_corners(box_xyxy, coords, labs), True, starts_here)

    def _add_point_prompt(self, frame, obj_id, coords: np.ndarray, labels: np.ndarray, clear: bool,
                          starts_here: bool) -> FrameResult:
        new = PointPrompt.from_pixels(coords, labels, (self.height, self.width), self.model.image_size)
        track = self.tracks.get(obj_id)
        if not clear and track is not None and frame in track.points:
            new = track.points[frame].extended(new)
        return self._run_prompt(frame, obj_id, points=new, first_frame=frame if starts_here else None)

    def add_mask(self, frame: int, obj_id: int, mask, *, starts_here: bool = False) -> FrameResult:
        """A mask (H, W) (bool or 0/1) for one object on one frame (``starts_here``: see add_points)."""
        frame, obj_id = self.check_frame(frame), validate_object_id(obj_id)
        m = mask_input(validate_mask(mask, (self.height, self.width)), self.model.image_size)
        return self._run_prompt(frame, obj_id, mask=m.to(self.model.device), first_frame=frame if starts_here else None)

    @torch.inference_mode()
    def _run_prompt(self, frame: int, obj_id: int, *, points: PointPrompt | None = None,
                    mask: torch.Tensor | None = None, first_frame: int | None = None) -> FrameResult:
        track = self.tracks.get(obj_id)
        if track is not None and not track.alive(frame):
            raise ValueError(f"object {obj_id} lives on frames {track.first_frame or 0}.."
                             f"{'' if track.last_frame is None else track.last_frame}: no prompt on frame {frame}")
        if track is not None and first_frame is not None:
            raise ValueError(f"object {obj_id} exists already: only a new object can start on frame {first_frame}")
        self._features(frame)  # read + encode first: a bad frame fails before any state changes
        track = track or self.tracker.new_track(obj_id, first_frame)
        is_init = frame not in track.tracked
        reverse = track.tracked.get(frame, False)
        prev_logits = None
        if points is not None:
            prev = track.latest_output(frame)
            if prev is not None:
                prev_logits = prev.pred_masks.to(self.model.device).clamp(-32.0, 32.0)
        with self.model.precision():
            (out,) = self.tracker.step(
                [track], frame, is_init_cond_frame=is_init, reverse=reverse, run_mem_encoder=False,
                points=None if points is None else points.to(self.model.device), mask=mask, prev_logits=prev_logits,
            )
        self.tracks[obj_id] = track
        track.set_prompt(frame, out, points=points, mask=mask)
        self.results.put(frame, obj_id, out.pred_masks, out.object_score_logits.item())
        return self._frame_result(frame)

    def _low_res(self, outs: list[FrameOutput | None]) -> torch.Tensor:
        """(N, 1, S/4, S/4) float32 low-res logits of these outputs on the model's device (None: absent,
        NO_OBJ_SCORE)."""
        size, device = self.model.image_size // 4, self.model.device
        lows = [out.pred_masks.to(device) if out is not None
                else torch.full((1, 1, size, size), NO_OBJ_SCORE, device=device) for out in outs]
        return torch.cat(lows).float()

    def _frame_result(self, frame: int) -> FrameResult:
        """Masks of every object on a frame from their newest outputs."""
        if not self.tracks:
            return FrameResult(frame, [], np.zeros((0, self.height, self.width), np.float32))
        lows = self._low_res([track.latest_output(frame) for track in self.tracks.values()])
        # upsampled where the model runs (a GPU does 64 objects' 1080p maps at once), one copy back
        logits = resize_bilinear(lows, (self.height, self.width))[:, 0]
        return FrameResult(frame, self.object_ids, logits.cpu().numpy())

    # ------------------------------------------------------------------ editing
    def remove_object(self, obj_id: int) -> None:
        """Forget an object: its prompts, memories and results."""
        track = self.tracks.pop(self.check_object(obj_id))
        track.release()
        self.results.drop_object(obj_id)
        self.lineage.forget(obj_id)
        self.progress = None

    def clear_prompts(self, frame: int | None = None, obj_id: int | None = None) -> None:
        """Remove prompts on one frame (or all frames) of one object (or all objects).

        A frame's prompted result becomes an ordinary tracked frame; an object left with no
        prompt at all is removed.
        """
        if frame is not None:
            frame = self.check_frame(frame)
        ids = [self.check_object(obj_id)] if obj_id is not None else self.object_ids
        for oid in ids:
            track = self.tracks[oid]
            frames = [frame] if frame is not None else sorted(track.prompted_frames() | set(track.pending))
            for f in frames:
                if not track.clear_prompt(f):
                    self.results.drop_frame(f, oid)
            self.progress = None
            if not track.prompted_frames():
                self.remove_object(oid)

    def check_end(self, obj_id: int, frame: int) -> None:
        """Raise ValueError if ``obj_id`` cannot end before ``frame`` (see :meth:`end_object`)."""
        self.tracks[self.check_object(obj_id)].check_end_before(frame)

    def end_object(self, obj_id: int, frame: int) -> None:
        """``obj_id`` ends on ``frame - 1`` (it divided, or left for good): its results and
        memories from ``frame`` on go, and no propagation tracks it there again."""
        self.check_end(obj_id, self.check_frame(frame))
        for f in self.tracks[obj_id].end_before(frame):
            self.results.drop_frame(f, obj_id)
        for f in [f for f in self.results.frames() if f >= frame]:
            self.results.drop_frame(f, obj_id)
        self.progress = None

    def divide(self, frame: int, obj_id: int, *, masks=None, points=None, daughter_ids=None) -> tuple[int, int]:
        """``obj_id`` divides on ``frame``: it ends on ``frame - 1`` and two daughters start on
        ``frame`` from their masks or clicks (see :func:`sam2_plugins.video.cells.divide`)."""
        return divide(self, frame, obj_id, masks=masks, points=points, daughter_ids=daughter_ids)

    def add_label_image(self, frame: int, labels, *, starts_here: bool = False) -> list[int]:
        """Each label of an (H, W) label image becomes that object's mask prompt on ``frame``."""
        return add_label_image(self, frame, labels, starts_here=starts_here)

    def add_automatic_masks(self, frame: int, settings=None) -> list[int]:
        """Seed every object that automatic masks find on ``frame`` (new ids); returns the ids."""
        return add_automatic_masks(self, frame, settings)

    def reset(self) -> None:
        """Remove every object, prompt and result (cached image features are kept)."""
        for oid in self.object_ids:
            self.remove_object(oid)
        self.results.clear()
        self.lineage.clear()

    def forget_before(self, frame: int, *, keep_results: int) -> None:
        """Drop what tracking onward from ``frame`` can no longer read (tracked memories older than
        SAM 2's reach) and results of frames more than ``keep_results`` before it."""
        reach = memory_reach(self.model.config)
        for track in self.tracks.values():
            track.forget_before(frame - reach, frame - keep_results)
        for f in [f for f in self.results.frames() if f < frame - keep_results]:
            for oid in self.results.object_ids_on(f):
                self.results.drop_frame(f, oid)

    # ------------------------------------------------------------------ read-back
    def mask(self, frame: int, obj_id: int) -> np.ndarray | None:
        """(H, W) bool mask of one object on one frame, or None if that frame has no result for it."""
        logits = self.results.logits(self.check_frame(frame), self.check_object(obj_id))
        return None if logits is None else logits > 0

    def labels(self, frames=None, dtype=np.uint16) -> np.ndarray:
        """(T, H, W) label stack: each pixel holds the id of the most confident object (0: none)."""
        frames = range(self.num_frames) if frames is None else [self.check_frame(f) for f in frames]
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
