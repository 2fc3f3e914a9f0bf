"""Validation of user prompts: clicks, boxes, masks. Every problem is a clear ValueError."""

from __future__ import annotations

import numpy as np

MAX_OBJECT_ID = 65535  # every export writes 16-bit label images (TIFF stacks, CTC masks)


def validate_object_id(obj_id) -> int:
    """An object id is an integer from 1 to 65535: 0 is the background of label images, and
    16-bit label images (the TIFF stack, the Cell Tracking Challenge masks) hold no more."""
    if isinstance(obj_id, bool) or not isinstance(obj_id, (int, np.integer)):
        raise ValueError(f"object ids are integers from 1 to {MAX_OBJECT_ID}, got {obj_id!r}")
    if not 1 <= obj_id <= MAX_OBJECT_ID:
        raise ValueError(f"object id {obj_id} is out of range: object ids go from 1 to {MAX_OBJECT_ID} "
                         f"(0 is the background of label images, which are 16-bit)")
    return int(obj_id)


def validate_points(points, labels, size_hw: tuple[int, int]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Clicks as float32 (N, 2) (x, y) pixels and int32 (N,) labels (1 = object, 0 = background)."""
    if points is None and labels is None:
        return None, None
    if points is None or labels is None:
        raise ValueError("points and labels must be given together")
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim == 1 and pts.shape[0] == 2:
        pts = pts[None]
    lab = np.atleast_1d(np.asarray(labels))
    if pts.size == 0 and lab.size == 0:
        return None, None
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must be an (N, 2) array of (x, y) pixels; got shape {np.shape(points)}")
    if lab.ndim != 1 or lab.shape[0] != pts.shape[0]:
        raise ValueError(f"got {pts.shape[0]} points but {lab.size} labels: give one label per point")
    if pts.shape[0] == 0:
        return None, None
    if not np.isfinite(pts).all():
        raise ValueError("points contain NaN or infinite coordinates")
    if not np.isin(lab, (0, 1)).all():
        raise ValueError(f"labels must be 1 (object) or 0 (background); got {sorted(set(lab.tolist()))}")
    h, w = size_hw
    outside = (pts[:, 0] < 0) | (pts[:, 0] > w) | (pts[:, 1] < 0) | (pts[:, 1] > h)
    if outside.any():
        x, y = pts[np.argmax(outside)]
        raise ValueError(f"point ({x:g}, {y:g}) is outside the image of width {w} and height {h}")
    return pts.astype(np.float32), lab.astype(np.int32)


def validate_box(box, size_hw: tuple[int, int]) -> np.ndarray | None:
    """A box as float32 (4,) = (x0, y0, x1, y1) pixels inside the image, x0 <= x1 and y0 <= y1."""
    if box is None:
        return None
    b = np.asarray(box, dtype=np.float64).reshape(-1)
    if b.shape != (4,):
        raise ValueError(f"a box is (x0, y0, x1, y1); got {np.shape(box)}")
    if not np.isfinite(b).all():
        raise ValueError("box contains NaN or infinite coordinates")
    x0, y0, x1, y1 = b
    if x1 < x0 or y1 < y0:
        raise ValueError(f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) has x1 < x0 or y1 < y0: corners are (x0, y0, x1, y1)")
    h, w = size_hw
    if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
        raise ValueError(f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is outside the image of width {w} and height {h}")
    return b.astype(np.float32)


def validate_mask(mask, size_hw: tuple[int, int]) -> np.ndarray:
    """A mask prompt as bool (H, W) of the frame's size."""
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[0] == 1:
        m = m[0]
    if m.shape != tuple(size_hw):
        raise ValueError(f"mask has shape {m.shape} but the frame is {size_hw[0]}x{size_hw[1]} (height x width)")
    if m.dtype != bool:
        if np.issubdtype(m.dtype, np.floating) and not np.isfinite(m).all():
            raise ValueError("mask contains NaN or infinite values")
        m = m > 0
    return m
