"""Node logic for videos: track prompted objects through an IMAGE batch, then read masks back.

The core session reads frames lazily from a view of the batch and keeps each object's result as
compact low-resolution logits; the outputs (the combined MASK, the preview IMAGE) are allocated once
and filled frame by frame, so memory beyond the input and the outputs does not grow with the length.
:class:`TrackedMasks` (the ``SAM2_TRACKS`` value passed between nodes) keeps only those compact
results and rebuilds any object's full-size masks on demand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from sam2_plugins.video.results import ResultStore

from .frames import AS_IS, Progress, check_images, open_frames, paint_overlay
from .prompts import ObjectPrompt, PromptError, check_prompts
from .segment import apply_prompts

__all__ = ["DIRECTIONS", "PREVIEW_SIZES", "TrackedMasks", "track_video", "select_masks", "preview_overlay"]

DIRECTIONS = ("forward", "backward", "both")
PREVIEW_SIZES = {"full": 1.0, "half": 0.5, "quarter": 0.25, "off": 0.0}


@dataclass
class TrackedMasks:
    """Every tracked object's masks over a video, compactly: what "Track video" hands on."""

    results: ResultStore
    object_ids: list[int]
    num_frames: int
    height: int
    width: int
    frames_done: list[int]

    def check_ids(self, ids: list[int] | None) -> list[int]:
        """The ids to read (None: all); an id that was never prompted is an error naming the known ones."""
        if ids is None:
            return list(self.object_ids)
        unknown = [i for i in ids if i not in self.object_ids]
        if unknown:
            raise PromptError(f"object id {unknown[0]} was never prompted; the tracked objects are "
                              f"{', '.join(map(str, self.object_ids)) or 'none'}")
        return ids

    def mask(self, frame: int, obj_id: int) -> np.ndarray | None:
        """(H, W) bool of one object on one frame; None where it has no result (not tracked there)."""
        logits = self.results.logits(frame, obj_id)
        return None if logits is None else logits > 0

    def union_into(self, out: torch.Tensor, frame: int, ids: list[int]) -> None:
        """Add the chosen objects' masks on ``frame`` to ``out`` (H, W) float, in place."""
        for oid in ids:
            m = self.mask(frame, oid)
            if m is not None:
                out.clamp_(min=torch.from_numpy(m).float())


def _start_frame(prompts: list[ObjectPrompt], direction: str, start_frame: int, num_frames: int) -> int:
    if direction not in DIRECTIONS:
        raise PromptError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    if start_frame < 0:  # automatic: where the prompts are
        frames = [p.frame for p in prompts]
        return max(frames) if direction == "backward" else min(frames)
    if start_frame >= num_frames:
        raise PromptError(f"start_frame {start_frame} is outside the {num_frames} frame(s) given (frames count "
                          "from 0; -1 starts at the prompts)")
    return start_frame


def track_video(model, images: torch.Tensor, prompts: list[ObjectPrompt], *, direction: str = "forward",
                start_frame: int = -1, object_ids: list[int] | None = None, preview: str = "full",
                opacity: float = 0.5, progress: Progress | None = None,
                check_interrupt: Callable[[], None] | None = None, feature_cache_mb: float = 64
                ) -> tuple[torch.Tensor, TrackedMasks, torch.Tensor]:
    """Track the prompted objects through the batch.

    ``direction`` forward (start_frame to the end), backward (start_frame to frame 0) or both;
    ``start_frame`` -1 starts at the earliest prompted frame (the latest, going backward).
    Returns the combined MASK ``[B, H, W]`` of ``object_ids`` (None: all), the tracks, and a preview
    IMAGE with coloured objects (``preview``: full, half, quarter size, or off: one black 8x8 frame).
    ``check_interrupt()`` runs after every frame and stops the run by raising (ComfyUI's interrupt);
    ``progress(done, total)`` counts frames.
    """
    b, h, w = check_images(images)
    check_prompts(prompts, b, h, w)
    if preview not in PREVIEW_SIZES:
        raise PromptError(f"preview must be one of {', '.join(PREVIEW_SIZES)}, got {preview!r}")
    if not 0.0 <= opacity <= 1.0:
        raise PromptError(f"opacity must be between 0 and 1, got {opacity}")
    prompted = sorted({p.obj_id for p in prompts})
    if object_ids is not None:
        unknown = [i for i in object_ids if i not in prompted]
        if unknown:
            raise PromptError(f"object id {unknown[0]} was never prompted; the prompted objects are "
                              f"{', '.join(map(str, prompted))}")
    start = _start_frame(prompts, direction, start_frame, b)
    selected = prompted if object_ids is None else object_ids

    # outputs, allocated once (a MASK is float in ComfyUI)
    combined = torch.zeros((b, h, w), dtype=torch.float32)
    scale = PREVIEW_SIZES[preview]
    if scale:
        ph, pw = max(1, round(h * scale)), max(1, round(w * scale))
        shown = torch.empty((b, ph, pw, 3), dtype=torch.float32)
    else:
        shown = torch.zeros((1, 8, 8, 3), dtype=torch.float32)

    session = model.open_video(open_frames(images), normalizer=AS_IS, feature_cache_mb=feature_cache_mb)
    done_frames: list[int] = []
    try:
        apply_prompts(session, prompts)
        passes = {"forward": [False], "backward": [True], "both": [False, True]}[direction]
        # frames each pass visits: onward from start to the end, or back from start to frame 0
        total = sum((start + 1 if start > 0 else 0) if rev else b - start for rev in passes)
        visited: set[int] = set()
        step = 0
        for rev in passes:
            for result in session.propagate(start, reverse=rev):
                f = result.frame_index
                pick = [k for k, oid in enumerate(result.object_ids) if oid in selected]
                masks = result.masks
                if pick:
                    combined[f] = torch.from_numpy(masks[pick].any(axis=0))
                if scale:
                    paint_overlay(shown[f], images[f], masks, result.object_ids, opacity)
                if f not in visited:
                    visited.add(f)
                    done_frames.append(f)
                step += 1
                if progress is not None:
                    progress(step, total)
                if check_interrupt is not None:
                    check_interrupt()
        if scale:
            for f in range(b):  # frames no pass reached show the plain frame
                if f not in visited:
                    paint_overlay(shown[f], images[f], np.zeros((0, h, w), bool), [], opacity)
        tracks = TrackedMasks(session.results, list(session.object_ids), b, h, w, sorted(done_frames))
    finally:
        session.close()
    return combined, tracks, shown


def select_masks(tracks: TrackedMasks, object_ids: list[int] | None) -> torch.Tensor:
    """The union of the chosen objects' masks on every frame, MASK ``[B, H, W]`` (None: all objects)."""
    ids = tracks.check_ids(object_ids)
    out = torch.zeros((tracks.num_frames, tracks.height, tracks.width), dtype=torch.float32)
    for f in tracks.frames_done:
        tracks.union_into(out[f], f, ids)
    return out


def preview_overlay(images: torch.Tensor, tracks: TrackedMasks, object_ids: list[int] | None = None,
                    opacity: float = 0.5) -> torch.Tensor:
    """The frames with the chosen objects tinted in their colours, IMAGE ``[B, H, W, 3]``."""
    b, h, w = check_images(images)
    if (b, h, w) != (tracks.num_frames, tracks.height, tracks.width):
        raise PromptError(f"the images are {b} frame(s) of {w}x{h} but the tracks are {tracks.num_frames} of "
                          f"{tracks.width}x{tracks.height}")
    ids = tracks.check_ids(object_ids)
    out = torch.empty((b, h, w, 3), dtype=torch.float32)
    for f in range(b):
        masks = [tracks.mask(f, oid) for oid in ids]
        keep = [(oid, m) for oid, m in zip(ids, masks) if m is not None]
        stack = np.stack([m for _, m in keep]) if keep else np.zeros((0, h, w), bool)
        paint_overlay(out[f], images[f], stack, [oid for oid, _ in keep], opacity)
    return out
