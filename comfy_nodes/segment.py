"""Node logic for single images: masks from prompts, and automatic masks ("segment everything").

Plain functions over ComfyUI tensors and a core ``Sam2``; the V3 node classes (nodes.py) only call
these, so they are tested without ComfyUI.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from sam2_plugins.automask import AutoMaskSettings, generate_masks

from .frames import AS_IS, Progress, check_images, frame_uint8, open_frames
from .prompts import ObjectPrompt, PromptError, check_prompts

__all__ = ["merge_prompts", "apply_prompts", "segment_images", "segment_everything"]


def merge_prompts(prompts: list[ObjectPrompt]) -> list[ObjectPrompt]:
    """One prompt per (object, frame): clicks joined in order, the last box and the last mask win."""
    merged: dict[tuple[int, int], ObjectPrompt] = {}
    for p in prompts:
        key = (p.obj_id, p.frame)
        old = merged.get(key)
        if old is None:
            merged[key] = p
        else:
            merged[key] = ObjectPrompt(p.obj_id, p.frame, old.points + p.points, old.labels + p.labels,
                                       p.box if p.box is not None else old.box,
                                       p.mask if p.mask is not None else old.mask)
    return sorted(merged.values(), key=lambda p: (p.frame, p.obj_id))


def apply_prompts(session, prompts: list[ObjectPrompt]) -> None:
    """Add merged prompts to a core video session (a mask first, then clicks and box refine it)."""
    for p in merge_prompts(prompts):
        if p.mask is not None:
            session.add_mask(p.frame, p.obj_id, p.mask)
        if p.box is not None:
            session.add_box(p.frame, p.obj_id, list(p.box), points=list(p.points) or None,
                            labels=list(p.labels) or None)
        elif p.points:
            session.add_points(p.frame, p.obj_id, list(p.points), list(p.labels))


def _for_image(prompts: list[ObjectPrompt], index: int) -> list[ObjectPrompt]:
    """Prompts for image ``index`` of a batch: those for every image (frame -1) and its own."""
    return [ObjectPrompt(p.obj_id, index, p.points, p.labels, p.box, p.mask) for p in prompts
            if p.frame in (-1, index)]


def segment_images(model, images: torch.Tensor, prompts: list[ObjectPrompt], *, individual: bool = False,
                   progress: Progress | None = None, check_interrupt: Callable[[], None] | None = None
                   ) -> tuple[torch.Tensor, list[int]]:
    """Masks of the prompted objects on each image of a batch, each image on its own (no tracking).

    Prompts with frame -1 apply to every image; others to their image only. Returns a MASK and the
    object ids: the union per image ``[B, H, W]``, or with ``individual`` one mask per object per
    image, image-major ``[B * N, H, W]`` (ids ascending; an object without a prompt on an image gets
    an empty mask there).
    """
    b, h, w = check_images(images)
    check_prompts([ObjectPrompt(p.obj_id, max(p.frame, 0), p.points, p.labels, p.box, p.mask) for p in prompts],
                  b, h, w)
    ids = sorted({p.obj_id for p in prompts})
    out = torch.zeros((b * len(ids) if individual else b, h, w), dtype=torch.float32)
    session = model.open_video(open_frames(images), normalizer=AS_IS, feature_cache_mb=64)
    try:
        for i in range(b):
            todo = _for_image(prompts, i)
            if todo:
                apply_prompts(session, todo)
                for k, oid in enumerate(ids):
                    if oid not in session.object_ids:
                        continue
                    m = session.mask(i, oid)
                    if m is None:
                        continue
                    m = torch.from_numpy(m)
                    if individual:
                        out[i * len(ids) + k] = m
                    else:
                        out[i] = torch.maximum(out[i], m.float())
                session.reset()  # the next image starts from nothing
            if progress is not None:
                progress(i + 1, b)
            if check_interrupt is not None:
                check_interrupt()
    finally:
        session.close()
    return out, ids


def segment_everything(model, images: torch.Tensor, settings: AutoMaskSettings, *, max_objects: int = 0,
                       progress: Progress | None = None, check_interrupt: Callable[[], None] | None = None
                       ) -> tuple[torch.Tensor, list[int]]:
    """Automatic masks of every image: ``[sum of N_i, H, W]`` image-major, best first within an image,
    and how many each image got. ``max_objects`` > 0 keeps only that many per image."""
    b, h, w = check_images(images)
    if max_objects < 0:
        raise PromptError(f"max_objects must be 0 (no limit) or more, got {max_objects}")
    found: list[list[np.ndarray]] = []
    for i in range(b):
        masks = generate_masks(model, frame_uint8(images, i), settings)
        if max_objects:
            masks = masks[:max_objects]
        found.append([m.mask for m in masks])
        if progress is not None:
            progress(i + 1, b)
        if check_interrupt is not None:
            check_interrupt()
    counts = [len(f) for f in found]
    out = torch.zeros((max(sum(counts), 1), h, w), dtype=torch.float32)  # MASK batches are never empty
    n = 0
    for per_image in found:
        for m in per_image:
            out[n] = torch.from_numpy(m)
            n += 1
    return out, counts
