"""The picture of one frame the visitor clicks on: objects in their colours, clicks and boxes drawn on top."""

from __future__ import annotations

import numpy as np

from sam2_plugins.exports import object_colors, overlay_labels

from .workspace import Workspace

POSITIVE = np.array([40, 220, 60], np.uint8)
NEGATIVE = np.array([235, 40, 40], np.uint8)


def _disc(img: np.ndarray, x: float, y: float, r: int, colour: np.ndarray, ring: bool) -> None:
    h, w = img.shape[:2]
    yy, xx = np.ogrid[max(0, int(y) - r - 1):min(h, int(y) + r + 2), max(0, int(x) - r - 1):min(w, int(x) + r + 2)]
    d2 = (xx - x) ** 2 + (yy - y) ** 2
    patch = img[yy.min():yy.max() + 1, xx.min():xx.max() + 1] if yy.size and xx.size else None
    if patch is None:
        return
    patch[d2 <= (r + 1) ** 2] = 255 if ring else colour  # a white rim keeps the dot visible on any colour
    patch[d2 <= r ** 2] = colour


def _rect(img: np.ndarray, box, colour: np.ndarray) -> None:
    h, w = img.shape[:2]
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    x0, x1 = sorted((min(max(x0, 0), w - 1), min(max(x1, 0), w - 1)))
    y0, y1 = sorted((min(max(y0, 0), h - 1), min(max(y1, 0), h - 1)))
    for t in range(2):
        img[y0:y1 + 1, min(x0 + t, w - 1)] = colour
        img[y0:y1 + 1, max(x1 - t, 0)] = colour
        img[min(y0 + t, h - 1), x0:x1 + 1] = colour
        img[max(y1 - t, 0), x0:x1 + 1] = colour


DISPLAY_SIDE = 640  # small clips are shown enlarged by a whole factor, so objects are easy to click


def display_scale(height: int, width: int) -> int:
    """How many screen pixels the page's picture gives each frame pixel (clicks are divided by it)."""
    return max(1, DISPLAY_SIDE // max(height, width))


def render_frame(ws: Workspace, frame: int) -> np.ndarray:
    """(kH, kW, 3) uint8: the frame with every object's mask, and the clicks and boxes given on it,
    enlarged k times (:func:`display_scale`) with square pixels."""
    clip = ws.clip
    image = np.asarray(clip.frames()[frame])
    out = np.array(overlay_labels(image, ws.labels_on(frame), alpha=0.45))  # own, writable copy
    r = max(3, round(max(clip.height, clip.width) / 110))
    for oid, obj in ws.objects.items():
        p = obj.prompts.get(frame)
        if p is None:
            continue
        if p.box is not None:
            _rect(out, p.box, object_colors([oid])[0])
        for (x, y), lab in zip(p.points, p.labels):
            _disc(out, x, y, r, POSITIVE if lab else NEGATIVE, ring=True)
    if ws.pending_corner is not None and ws.pending_corner[0] == frame:
        _, x, y = ws.pending_corner
        _disc(out, x, y, r, np.array([255, 200, 0], np.uint8), ring=True)
    k = display_scale(clip.height, clip.width)
    return np.repeat(np.repeat(out, k, axis=0), k, axis=1) if k > 1 else out
