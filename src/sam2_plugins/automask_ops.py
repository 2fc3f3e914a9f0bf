"""Array helpers of the automatic mask generator (:mod:`sam2_plugins.automask`): point grids, crop
boxes, stability scores, boxes of masks, box NMS and the removal of small regions.

Boxes are ``(x0, y0, x1, y1)`` in pixels with exclusive ends: a mask's pixels all lie in
``mask[y0:y1, x0:x1]``. An empty mask has the box ``(0, 0, 0, 0)``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import ndimage as ndi

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def point_grid(points_per_side: int) -> np.ndarray:
    """``points_per_side**2`` points (x, y) in [0, 1], at the centres of an n x n grid of cells, row by row."""
    n = int(points_per_side)
    side = (np.arange(n, dtype=np.float64) + 0.5) / n
    xs, ys = np.meshgrid(side, side, indexing="xy")
    return np.stack([xs.ravel(), ys.ravel()], axis=-1)


def crop_boxes(
    height: int, width: int, n_layers: int, overlap_ratio: float
) -> list[tuple[tuple[int, int, int, int], int]]:
    """The whole image (layer 0), then for layer i >= 1 a 2**i x 2**i set of overlapping crops.

    Neighbouring crops of layer 1 overlap by ``overlap_ratio`` of the image's short side, deeper layers
    by proportionally less. Returns ``[((x0, y0, x1, y1), layer), ...]``.
    """
    out = [((0, 0, width, height), 0)]
    short = min(height, width)
    for layer in range(1, n_layers + 1):
        per_side = 2**layer
        overlap = int(overlap_ratio * short * 2 / per_side)
        crop_w = math.ceil((overlap * (per_side - 1) + width) / per_side)
        crop_h = math.ceil((overlap * (per_side - 1) + height) / per_side)
        xs = [int((crop_w - overlap) * i) for i in range(per_side)]
        ys = [int((crop_h - overlap) * i) for i in range(per_side)]
        for x0 in xs:
            for y0 in ys:
                out.append(((x0, y0, min(x0 + crop_w, width), min(y0 + crop_h, height)), layer))
    return out


def stability_scores(logits: torch.Tensor, threshold: float, offset: float) -> torch.Tensor:
    """IoU of the masks cut at ``threshold + offset`` and at ``threshold - offset``: (N, h, w) -> (N,).

    The first mask lies inside the second, so the IoU is the ratio of their areas (1 for an empty mask).
    """
    inner = (logits > threshold + offset).flatten(1).sum(-1)
    outer = (logits > threshold - offset).flatten(1).sum(-1)
    return torch.where(outer > 0, inner / outer.clamp(min=1), torch.ones((), device=logits.device))


def mask_boxes(masks: torch.Tensor) -> torch.Tensor:
    """Boxes (N, 4) int64 of boolean masks (N, h, w); (0, 0, 0, 0) for an empty mask."""
    n, h, w = masks.shape
    if n == 0:
        return torch.zeros(0, 4, dtype=torch.int64, device=masks.device)
    rows = masks.any(dim=2)  # (N, h)
    cols = masks.any(dim=1)  # (N, w)
    ys = torch.arange(h, device=masks.device)
    xs = torch.arange(w, device=masks.device)
    y0 = torch.where(rows, ys, h).amin(dim=1)
    y1 = torch.where(rows, ys + 1, 0).amax(dim=1)
    x0 = torch.where(cols, xs, w).amin(dim=1)
    x1 = torch.where(cols, xs + 1, 0).amax(dim=1)
    boxes = torch.stack([x0, y0, x1, y1], dim=1)
    return torch.where(rows.any(dim=1)[:, None], boxes, torch.zeros_like(boxes))


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """The box of one boolean (H, W) mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return (0, 0, 0, 0)
    cols = np.flatnonzero(mask.any(axis=0))
    return (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one box (4,) with each of ``boxes`` (N, 4); 0 where the union is empty."""
    box = np.asarray(box, dtype=np.float64)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    iw = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    ih = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = iw * ih
    area = max(box[2] - box[0], 0) * max(box[3] - box[1], 0)
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    union = area + areas - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def box_nms(boxes, scores, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression: indices of the kept boxes, highest score first.

    The best remaining box is kept and every other box whose IoU with it exceeds ``iou_threshold``
    is dropped, until none remain. Equal scores keep the earlier box.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(boxes) != len(scores):
        raise ValueError(f"box_nms: {len(boxes)} boxes but {len(scores)} scores")
    order = np.argsort(-scores, kind="stable")
    alive = np.ones(len(order), dtype=bool)
    kept = []
    for rank, idx in enumerate(order):
        if not alive[rank]:
            continue
        kept.append(idx)
        rest = order[rank + 1 :]
        alive[rank + 1 :] &= box_iou(boxes[idx], boxes[rest]) <= iou_threshold
    return np.asarray(kept, dtype=np.int64)


def near_crop_edge(boxes: np.ndarray, crop_box, image_box, atol: float = 20.0) -> np.ndarray:
    """Which boxes (N, 4), in image pixels, lie within ``atol`` of an edge of their crop that is not
    an edge of the image: (N,) bool. Such masks are likely cut by the crop."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    crop = np.asarray(crop_box, dtype=np.float64)[None]
    full = np.asarray(image_box, dtype=np.float64)[None]
    at_crop = np.abs(boxes - crop) <= atol
    at_image = np.abs(boxes - full) <= atol
    return (at_crop & ~at_image).any(axis=1)


def remove_small_regions(mask: np.ndarray, min_area: int) -> tuple[np.ndarray, bool]:
    """Fill the holes and remove the islands (8-connected) of fewer than ``min_area`` pixels.

    A hole is a background region enclosed by the mask (not reaching the image's border). When every
    island is small, the largest stays. Works within the mask's box; returns (mask, changed).
    """
    x0, y0, x1, y1 = mask_box(mask)
    if min_area <= 0 or x1 == 0:
        return mask, False
    h, w = mask.shape
    ya, yb, xa, xb = max(y0 - 1, 0), min(y1 + 1, h), max(x0 - 1, 0), min(x1 + 1, w)
    win = mask[ya:yb, xa:xb]
    out = win.copy()
    holes, n = ndi.label(~win, structure=_EIGHT_CONNECTED)
    if n:
        sizes = np.bincount(holes.ravel(), minlength=n + 1)
        edge = np.unique(np.concatenate([holes[0], holes[-1], holes[:, 0], holes[:, -1]]))
        small = sizes < min_area
        small[0] = False
        small[edge] = False
        if small.any():
            out |= small[holes]
    islands, n = ndi.label(out, structure=_EIGHT_CONNECTED)
    if n > 1 or (n == 1 and out.sum() < min_area):
        sizes = np.bincount(islands.ravel(), minlength=n + 1)
        sizes[0] = 0
        keep = sizes >= min_area
        if not keep.any():
            keep[int(np.argmax(sizes))] = True
        keep[0] = False
        out = keep[islands]
    if np.array_equal(out, win):
        return mask, False
    result = mask.copy()
    result[ya:yb, xa:xb] = out
    return result, True
