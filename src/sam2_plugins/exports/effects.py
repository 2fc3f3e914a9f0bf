"""Video effects on tracked objects: what a creator applies to a clip once its objects are masked.

Each effect maps one frame and its label image to a new RGB frame (numpy in, numpy out), so any
adapter -- the browser app, a node graph, a script -- renders the same look:

==================  ===========================================================================
``overlay``         coloured objects with outlines (:func:`~.video.overlay_labels`)
``blur_background`` objects sharp, everything else blurred
``remove_background`` objects on a flat backdrop (white by default), the background gone
``highlight``       objects outlined in their colour, everything else darkened
``grey_rest``       objects in colour, everything else in greyscale
==================  ===========================================================================

``only`` restricts an effect to some object ids (the others count as background).
:func:`write_effect_video` encodes a whole clip with the H.264 writer of
:func:`~.video.write_overlay_video`, one frame at a time.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterable

import numpy as np
from scipy import ndimage as ndi

from .video import _edges, frame_and_labels, object_colors, overlay_labels, write_overlay_video

__all__ = ["EFFECTS", "apply_effect", "write_effect_video"]

EFFECTS = ("overlay", "blur_background", "remove_background", "highlight", "grey_rest")


def _foreground(labels: np.ndarray, only: Iterable[int] | None) -> np.ndarray:
    if only is None:
        return labels != 0
    ids = np.asarray(sorted({int(i) for i in only}), dtype=labels.dtype)
    return np.isin(labels, ids) & (labels != 0)


def _blend(inside: np.ndarray, outside: np.ndarray, fg: np.ndarray) -> np.ndarray:
    return np.where(fg[..., None], inside, outside).astype(np.uint8)


def _grey(rgb: np.ndarray) -> np.ndarray:
    luma = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.repeat(np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., None], 3, axis=-1)


def apply_effect(
    image: Any,
    labels: Any,
    effect: str = "overlay",
    *,
    only: Iterable[int] | None = None,
    alpha: float = 0.5,
    blur_sigma: float | None = None,
    backdrop: tuple[int, int, int] = (255, 255, 255),
    dim: float = 0.35,
) -> np.ndarray:
    """One frame with `effect` applied to its objects; returns (H, W, 3) uint8.

    `image`: (H, W[, C]) uint8 or float in [0, 1]; `labels`: (H, W) integer ids (0 = background).
    `blur_sigma` (pixels) defaults to 1.5% of the frame's diagonal; `dim` is how bright the
    background stays under ``highlight``; `backdrop` is the RGB colour behind ``remove_background``.
    """
    if effect not in EFFECTS:
        raise ValueError(f"unknown effect {effect!r}; choose one of {', '.join(EFFECTS)}")
    rgb, lab = frame_and_labels(image, labels)
    if not 0.0 <= dim <= 1.0:
        raise ValueError(f"dim must be in [0, 1], got {dim}")
    if only is not None:
        lab = np.where(_foreground(lab, only), lab, 0)
    fg = lab != 0
    if effect == "overlay":
        return overlay_labels(rgb, lab, alpha=alpha)
    if effect == "blur_background":
        sigma = float(blur_sigma) if blur_sigma is not None else 0.015 * float(np.hypot(*lab.shape))
        if sigma < 0:
            raise ValueError(f"blur_sigma must be >= 0, got {blur_sigma}")
        blurred = ndi.gaussian_filter(rgb.astype(np.float32), (sigma, sigma, 0))
        return _blend(rgb, np.clip(np.rint(blurred), 0, 255), fg)
    if effect == "remove_background":
        flat = np.broadcast_to(np.asarray(backdrop, np.uint8).reshape(1, 1, 3), rgb.shape)
        return _blend(rgb, flat, fg)
    if effect == "grey_rest":
        return _blend(rgb, _grey(rgb), fg)
    # highlight: darken the rest, outline each object in its colour
    out = _blend(rgb, np.rint(rgb.astype(np.float32) * dim), fg)
    if fg.any():
        edge = _edges(lab)
        edge |= ndi.binary_dilation(edge) & ~fg  # a 2-pixel ring, half outside: visible on any object
        ids, inv = np.unique(lab, return_inverse=True)
        col = object_colors(ids)[inv.reshape(lab.shape)]
        near = ndi.grey_dilation(lab, size=3)  # the id next to a ring pixel outside its object
        ring_col = np.where(fg[..., None], col, object_colors(near.ravel()).reshape(*lab.shape, 3))
        out[edge] = ring_col[edge]
    return out


def write_effect_video(
    path: str | os.PathLike,
    frames: Callable[[int], Any],
    labels: Callable[[int], Any],
    num_frames: int,
    effect: str = "overlay",
    fps: float = 10,
    *,
    only: Iterable[int] | None = None,
    progress: Callable[[int, int], Any] | None = None,
    cancel: Any = None,
    **options: Any,
):
    """Encode ``apply_effect(frames(i), labels(i), effect)`` for every frame as an H.264 MP4.

    Reads one frame at a time (nothing else is held); written atomically like
    :func:`~.video.write_overlay_video`, whose return value it passes on (None when cancelled).
    ``options`` go to :func:`apply_effect`.
    """
    if effect not in EFFECTS:
        raise ValueError(f"unknown effect {effect!r}; choose one of {', '.join(EFFECTS)}")
    only = None if only is None else sorted({int(i) for i in only})
    last: dict[int, np.ndarray] = {}

    def label(i: int) -> np.ndarray:
        if i not in last:
            last.clear()
            last[i] = np.asarray(labels(i))
        return last[i]

    def frame(i: int) -> np.ndarray:
        return apply_effect(frames(i), label(i), effect, only=only, **options)

    # the effect is already drawn: the writer's own overlay is switched off (alpha 0, no contours)
    return write_overlay_video(path, frame, label, fps=fps, alpha=0.0, contours=False, num_frames=num_frames,
                               progress=progress, cancel=cancel)
