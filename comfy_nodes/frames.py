"""ComfyUI tensors in and out: IMAGE ``[B, H, W, C]`` float in [0, 1], MASK ``[B, H, W]`` float.

ComfyUI's frames are display-ready RGB, so the video is opened with the ``"none"`` intensity mapping
(no percentile stretch) over a zero-copy numpy view of the batch: frames are read one at a time.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from sam2_plugins.exports.video import object_colors
from sam2_plugins.intensity import IntensityNormalizer

from .prompts import PromptError

__all__ = ["check_images", "open_frames", "frame_uint8", "Progress", "AS_IS", "paint_overlay"]

AS_IS = IntensityNormalizer(mode="none")
# progress(done, total) after each frame; check_interrupt() raises to stop (ComfyUI's interrupt)
Progress = Callable[[int, int], Any]


def check_images(images: Any, name: str = "images") -> tuple[int, int, int]:
    """(B, H, W) of a ComfyUI IMAGE batch; a clear error for anything else, before any work."""
    if not isinstance(images, torch.Tensor):
        raise PromptError(f"{name} must be a ComfyUI IMAGE tensor [B, H, W, C], got {type(images).__name__}")
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        raise PromptError(f"{name} must be an IMAGE [B, H, W, C] with 1, 3 or 4 channels, got shape "
                          f"{list(images.shape)}")
    b, h, w = (int(s) for s in images.shape[:3])
    if b == 0:
        raise PromptError(f"{name} has zero frames: nothing to segment")
    if h < 8 or w < 8:
        raise PromptError(f"{name} frames are {w}x{h} pixels: too small to segment")
    return b, h, w


def open_frames(images: torch.Tensor) -> np.ndarray:
    """A numpy view of the batch for the core's lazy frame source (no copy for a CPU float tensor)."""
    t = images.detach()
    if t.device.type != "cpu":
        t = t.cpu()  # rare: ComfyUI keeps IMAGE tensors on its intermediate device, the CPU
    return t.numpy()


def frame_uint8(images: torch.Tensor, index: int) -> np.ndarray:
    """One frame as (H, W, 3) uint8 (what the image predictor and automatic masks take as is)."""
    f = images[index, :, :, :3] if images.shape[-1] >= 3 else images[index, :, :, :1].expand(-1, -1, 3)
    return (f.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


def paint_overlay(out: torch.Tensor, frame: torch.Tensor, masks: np.ndarray | torch.Tensor, ids: list[int],
                  opacity: float) -> None:
    """Write ``frame`` (H, W, C) with each object's mask (N, H, W) tinted in its colour into ``out``
    (h, w, 3), resizing when the preview is smaller than the frame."""
    rgb = frame[..., :3] if frame.shape[-1] >= 3 else frame[..., :1].expand(-1, -1, 3)
    h, w = out.shape[:2]
    m = torch.as_tensor(masks, dtype=torch.bool)
    if (h, w) != tuple(rgb.shape[:2]):
        rgb = torch.nn.functional.interpolate(rgb.permute(2, 0, 1)[None].float(), size=(h, w), mode="area")[0]
        rgb = rgb.permute(1, 2, 0)
        if m.numel():
            m = torch.nn.functional.interpolate(m[None].float(), size=(h, w), mode="nearest")[0] > 0.5
    out.copy_(rgb)
    if not len(ids):
        return
    colors = torch.from_numpy(object_colors(ids).astype(np.float32) / 255.0)
    for k in range(len(ids)):
        where = m[k]
        if where.any():
            out[where] = out[where] * (1 - opacity) + colors[k] * opacity
