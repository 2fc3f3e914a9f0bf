"""Small shared helpers for the synthetic data generators: smooth noise fields,
display stretching, label colouring and contact sheets."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage as ndi


def smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Zero-mean, unit-std Gaussian-correlated random field (float32) of `shape`."""
    field = rng.standard_normal(shape).astype(np.float32)
    if sigma > 0:
        field = ndi.gaussian_filter(field, sigma, mode="wrap")
    field -= field.mean()
    std = float(field.std())
    return field / std if std > 0 else field


def gaussian_spots(
    grid_y: np.ndarray, grid_x: np.ndarray, centers: np.ndarray, sigmas: np.ndarray, amps: np.ndarray
) -> np.ndarray:
    """Sum of isotropic Gaussian spots evaluated on a (broadcastable) coordinate grid."""
    out = np.zeros(np.broadcast(grid_y, grid_x).shape, dtype=np.float32)
    for (cy, cx), s, a in zip(centers, sigmas, amps):
        out += a * np.exp(-((grid_y - cy) ** 2 + (grid_x - cx) ** 2) / (2.0 * s * s))
    return out


def percentile_stretch(img: np.ndarray, lo: float = 0.5, hi: float = 99.8) -> np.ndarray:
    """Contrast-stretch any-dtype image(s) to uint8 between two global percentiles."""
    a = np.asarray(img, dtype=np.float32)
    p0, p1 = np.percentile(a, [lo, hi])
    scale = 255.0 / max(float(p1 - p0), 1e-6)
    return np.clip((a - p0) * scale, 0, 255).astype(np.uint8)


def label_colors(max_id: int, seed: int = 7) -> np.ndarray:
    """(max_id+1, 3) uint8 colour table; id 0 is black, others are distinct bright hues."""
    rng = np.random.default_rng(seed)
    hues = (np.arange(max_id + 1) * 0.61803398875 + rng.random()) % 1.0
    h6 = hues * 6.0
    c = np.stack([np.abs(h6 - 3) - 1, 2 - np.abs(h6 - 2), 2 - np.abs(h6 - 4)], axis=-1)
    rgb = (np.clip(c, 0, 1) * 0.75 + 0.25) * 255
    rgb[0] = 0
    return rgb.astype(np.uint8)


def label_overlay(gray_or_rgb: np.ndarray, labels: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend coloured instance labels (with white-ish boundaries) onto a uint8 image."""
    base = gray_or_rgb if gray_or_rgb.ndim == 3 else np.repeat(gray_or_rgb[..., None], 3, axis=-1)
    base = base.astype(np.float32)
    colors = label_colors(int(labels.max()) if labels.size else 0)[labels].astype(np.float32)
    fg = (labels > 0)[..., None]
    out = np.where(fg, (1 - alpha) * base + alpha * colors, base)
    edge = np.zeros(labels.shape, dtype=bool)
    edge[:-1] |= labels[:-1] != labels[1:]
    edge[1:] |= labels[:-1] != labels[1:]
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    edge[:, 1:] |= labels[:, :-1] != labels[:, 1:]
    out[edge & (labels > 0)] = colors[edge & (labels > 0)] * 0.5 + 127
    return out.astype(np.uint8)


def contact_sheet(rows: Sequence[Sequence[np.ndarray]], pad: int = 4) -> np.ndarray:
    """Tile rows of equally sized uint8 images (gray or RGB) into one RGB image."""
    tiles = [[t if t.ndim == 3 else np.repeat(t[..., None], 3, axis=-1) for t in r] for r in rows]
    h = max(t.shape[0] for r in tiles for t in r)
    w = max(t.shape[1] for r in tiles for t in r)
    ncols = max(len(r) for r in tiles)
    sheet = np.full((len(tiles) * (h + pad) + pad, ncols * (w + pad) + pad, 3), 40, np.uint8)
    for i, r in enumerate(tiles):
        for j, t in enumerate(r):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            sheet[y : y + t.shape[0], x : x + t.shape[1]] = t
    return sheet


def fold_into(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Reflect values into [lo, hi] (continuous triangle-wave folding)."""
    span = hi - lo
    if span <= 0:
        return np.full_like(x, (lo + hi) / 2.0)
    y = np.mod(x - lo, 2 * span)
    return lo + np.where(y > span, 2 * span - y, y)
