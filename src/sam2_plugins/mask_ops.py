"""Mask edits that video inpainting and compositing need: grow or shrink, feather, bounding boxes.

Every function takes a stack of masks, (B, H, W) (or one (H, W) mask), as a torch tensor or a numpy
array, with values in [0, 1] (bool is fine), and returns a float32 torch tensor of the same shape on
the same device. They work one mask at a time, so a long video's stack costs one mask of scratch
memory beyond its output, and they never import a host application (napari, ComfyUI, Gradio share
them).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["grow", "feather", "bounding_box_masks", "mask_box", "as_mask_stack"]


def as_mask_stack(masks: Any) -> tuple[torch.Tensor, bool]:
    """(B, H, W) float32 view of ``masks`` and whether the input was a single (H, W) mask."""
    t = torch.from_numpy(np.asarray(masks)) if not isinstance(masks, torch.Tensor) else masks
    if t.ndim == 2:
        return t[None].float(), True
    if t.ndim != 3:
        raise ValueError(f"masks must be (H, W) or (B, H, W); got shape {tuple(t.shape)}")
    return t.float(), False


def _out(result: torch.Tensor, single: bool) -> torch.Tensor:
    return result[0] if single else result


def _disk(radius: int, device: torch.device) -> torch.Tensor:
    r = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32)
    return ((r[:, None] ** 2 + r[None, :] ** 2) <= radius * radius + 1e-6).float()


def grow(masks: Any, pixels: int) -> torch.Tensor:
    """Grow (``pixels`` > 0) or shrink (< 0) each mask by a round (disk) structuring element.

    Masks are thresholded at 0.5 first, so the result is 0/1. Shrinking is growing the background.
    """
    stack, single = as_mask_stack(masks)
    if isinstance(pixels, bool) or not isinstance(pixels, (int, np.integer)):
        raise ValueError(f"grow takes a whole number of pixels, got {pixels!r}")
    out = torch.empty_like(stack)
    if pixels == 0:
        out.copy_(stack > 0.5)
        return _out(out, single)
    radius = abs(int(pixels))
    kernel = _disk(radius, stack.device)[None, None]
    for i in range(stack.shape[0]):
        binary = (stack[i] > 0.5).float()
        src = binary if pixels > 0 else 1.0 - binary
        # pad with 0 so the frame's border is neither object (grow) nor background (shrink) by itself
        hit = F.conv2d(F.pad(src[None, None], (radius,) * 4), kernel)[0, 0] > 0.5
        out[i] = hit.float() if pixels > 0 else (~hit).float()
    return _out(out, single)


def _gaussian_1d(sigma: float, device: torch.device) -> torch.Tensor:
    half = max(1, math.ceil(3 * sigma))
    x = torch.arange(-half, half + 1, device=device, dtype=torch.float32)
    k = torch.exp(-(x * x) / (2 * sigma * sigma))
    return k / k.sum()


def feather(masks: Any, radius: float) -> torch.Tensor:
    """Soften each mask's edge with a Gaussian blur of standard deviation ``radius`` / 2 pixels, so the
    ramp is about ``radius`` pixels wide on each side of the edge; values stay in [0, 1]."""
    stack, single = as_mask_stack(masks)
    radius = float(radius)
    if not math.isfinite(radius) or radius < 0:
        raise ValueError(f"feather radius must be a finite number >= 0, got {radius}")
    out = torch.empty_like(stack)
    if radius == 0:
        out.copy_(stack.clamp(0, 1))
        return _out(out, single)
    k = _gaussian_1d(radius / 2, stack.device)
    half = k.numel() // 2
    kx, ky = k.view(1, 1, 1, -1), k.view(1, 1, -1, 1)
    for i in range(stack.shape[0]):
        m = stack[i].clamp(0, 1)[None, None]
        m = F.conv2d(F.pad(m, (half, half, 0, 0), mode="replicate"), kx)
        m = F.conv2d(F.pad(m, (0, 0, half, half), mode="replicate"), ky)
        out[i] = m[0, 0].clamp_(0, 1)
    return _out(out, single)


def mask_box(mask: torch.Tensor) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of the pixels above 0.5 in one (H, W) mask (x1, y1 exclusive), None if empty."""
    on = mask > 0.5
    rows, cols = torch.nonzero(on.any(dim=1)), torch.nonzero(on.any(dim=0))
    if rows.numel() == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def bounding_box_masks(masks: Any, padding: int = 0) -> torch.Tensor:
    """Each mask replaced by its filled bounding box, widened by ``padding`` pixels on every side (kept
    inside the frame); an empty mask stays empty."""
    stack, single = as_mask_stack(masks)
    if isinstance(padding, bool) or not isinstance(padding, (int, np.integer)) or padding < 0:
        raise ValueError(f"padding must be a whole number of pixels >= 0, got {padding!r}")
    out = torch.zeros_like(stack)
    h, w = stack.shape[-2:]
    for i in range(stack.shape[0]):
        box = mask_box(stack[i])
        if box is not None:
            x0, y0, x1, y1 = box
            out[i, max(0, y0 - padding):min(h, y1 + padding), max(0, x0 - padding):min(w, x1 + padding)] = 1.0
    return _out(out, single)
