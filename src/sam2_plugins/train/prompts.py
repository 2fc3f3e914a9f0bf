"""Prompts sampled from ground-truth masks for training: clicks, noisy boxes and corrective clicks.

All coordinates are (x, y) pixels of the model input (S x S); masks are (B, 1, S, S) bool.
Randomness comes from an explicit ``torch.Generator`` so a run is reproducible.
"""

from __future__ import annotations

import torch

POSITIVE, NEGATIVE, BOX_TL, BOX_BR = 1, 0, 2, 3


def _argmax_xy(noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per batch row, the flat index of the max of (B, H, W) -> (x, y) float."""
    w = noise.shape[-1]
    idx = noise.flatten(1).argmax(-1)
    return torch.stack([(idx % w).float(), torch.div(idx, w, rounding_mode="floor").float()], -1), idx


def click_in(masks: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One positive click drawn uniformly inside each mask: (B, 1, 2) coords, (B, 1) labels.

    An empty mask gets a negative click anywhere (the object is absent).
    """
    m = masks[:, 0]
    noise = torch.rand(m.shape, generator=gen, device=m.device)
    empty = ~m.flatten(1).any(-1)
    noise = torch.where(m | empty[:, None, None], noise, torch.zeros_like(noise))
    xy, _ = _argmax_xy(noise)
    labels = torch.where(empty, NEGATIVE, POSITIVE).to(torch.int32)
    return xy[:, None], labels[:, None]


def noisy_box(masks: torch.Tensor, gen: torch.Generator, noise: float = 0.1, bound: float = 5.0
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Box corners of each mask, each moved by up to ``noise`` x the box side (at most ``bound`` px).

    Returns (B, 2, 2) coords and (B, 2) labels (2: top-left, 3: bottom-right), as SAM 2 samples
    boxes (its bound of 20 px is for 1024-pixel inputs; scale ``bound`` with the input size).
    """
    b, _, h, w = masks.shape
    m = masks[:, 0]
    ys = torch.arange(h, device=m.device)
    xs = torch.arange(w, device=m.device)
    rows, cols = m.any(2), m.any(1)  # (B, H), (B, W)
    big = torch.tensor(10**6, device=m.device)
    y0 = torch.where(rows, ys, big).amin(-1)
    y1 = torch.where(rows, ys, -big).amax(-1)
    x0 = torch.where(cols, xs, big).amin(-1)
    x1 = torch.where(cols, xs, -big).amax(-1)
    empty = ~rows.any(-1)
    box = torch.stack([x0, y0, x1, y1], -1).float()
    box = torch.where(empty[:, None], torch.tensor([0.0, 0.0, w - 1.0, h - 1.0], device=m.device), box)
    bw, bh = box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]
    max_dx = torch.clamp(bw * noise, max=bound)
    max_dy = torch.clamp(bh * noise, max=bound)
    jitter = 2 * torch.rand(b, 4, generator=gen, device=m.device) - 1
    box = box + jitter * torch.stack([max_dx, max_dy, max_dx, max_dy], -1)
    limit = torch.tensor([w - 1.0, h - 1.0, w - 1.0, h - 1.0], device=m.device)
    box = torch.minimum(box.clamp(min=0), limit)
    labels = torch.tensor([BOX_TL, BOX_BR], dtype=torch.int32, device=m.device).expand(b, 2)
    return box.reshape(b, 2, 2), labels.contiguous()


def corrective_click(gt: torch.Tensor, pred: torch.Tensor | None, gen: torch.Generator
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """One click from the error region of each prediction (SAM 2's interactive training).

    The click falls uniformly on the union of the false-negative area (label 1) and the
    false-positive area (label 0), so the larger error gets the click more often. A perfect
    prediction gets a negative click on the background. ``pred`` None samples from ``gt`` alone.
    gt, pred (B, 1, S, S) bool -> (B, 1, 2) coords, (B, 1) labels.
    """
    g = gt[:, 0]
    p = torch.zeros_like(g) if pred is None else pred[:, 0]
    fn, fp = g & ~p, ~g & p
    perfect = ~(fn | fp).flatten(1).any(-1)
    noise = torch.rand((2,) + g.shape, generator=gen, device=g.device)
    fp_or_bg = fp | (perfect[:, None, None] & ~g)
    noise = torch.stack([noise[0] * fp_or_bg, noise[1] * fn], 1)  # (B, 2, H, W)
    h, w = noise.shape[-2:]
    idx = noise.flatten(1).argmax(-1)
    labels = (torch.div(idx, h * w, rounding_mode="floor") == 1).to(torch.int32)  # channel 1: FN
    pix = idx % (h * w)
    xy = torch.stack([(pix % w).float(), torch.div(pix, w, rounding_mode="floor").float()], -1)
    return xy[:, None], labels[:, None]
