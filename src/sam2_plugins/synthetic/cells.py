"""Seeded synthetic microscopy time-lapses of moving, deforming, touching,
dividing, entering and leaving cells, with exact per-frame instance labels
and lineage.

Overlap rule: where the shapes of several cells cover the same pixel, the pixel
belongs to the cell for which it is closest to the centre relative to that
cell's boundary (smallest normalised radial distance); ties go to the cell
created first.  This gives flat contact lines between touching cells, as in a
confluent monolayer, and the labels never overlap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import ndimage as ndi

from ._cellsim import PRE_DIVISION, Cell, Footprint, divide, footprint, handoff_entrant, new_cell, step_cells
from ._common import smooth_noise

Style = Literal["fluorescence", "phase"]

# Intensity levels (background, peak cell signal) per output dtype.
_FLUO_LEVELS = {np.dtype(np.uint8): (16.0, 215.0), np.dtype(np.uint16): (500.0, 20000.0)}
_PHASE_BG = {np.dtype(np.uint8): 120.0, np.dtype(np.uint16): 8000.0}


@dataclass(frozen=True)
class Track:
    """Life span of one track id: visible in frames first..last (inclusive)."""

    track_id: int
    first: int
    last: int
    parent: int = 0


@dataclass
class TimeLapse:
    """A synthetic single-channel time-lapse with exact ground truth.

    `frames` (T,H,W) uint8/uint16; `labels` (T,H,W) int32 instance masks (0 is
    background, ids constant along a track, daughters get new ids); `lineage`
    maps every track id to its parent id (0 = none); `tracks` holds each id's
    first/last frame.
    """

    frames: np.ndarray
    labels: np.ndarray
    lineage: dict[int, int]
    tracks: dict[int, Track]
    style: str
    seed: int

    @property
    def num_frames(self) -> int:
        """Number of frames T."""
        return int(self.frames.shape[0])

    def children(self) -> dict[int, list[int]]:
        """Mother id -> daughter ids, for every division."""
        out: dict[int, list[int]] = {}
        for tid, parent in sorted(self.lineage.items()):
            if parent:
                out.setdefault(parent, []).append(tid)
        return out

    def napari_graph(self) -> dict[int, list[int]]:
        """Child id -> [parent id] mapping, as napari's Tracks layer expects."""
        return {tid: [p] for tid, p in self.lineage.items() if p}

    def track_points(self) -> np.ndarray:
        """(N,4) float array of [track_id, t, y, x] label centroids, sorted by id then t."""
        t_, h, w = self.labels.shape
        n = int(self.labels.max()) + 1
        yy = np.broadcast_to(np.arange(h, dtype=np.float64)[:, None], (h, w)).ravel()
        xx = np.broadcast_to(np.arange(w, dtype=np.float64)[None, :], (h, w)).ravel()
        rows = []
        for t in range(t_):
            lab = self.labels[t].ravel()
            cnt = np.bincount(lab, minlength=n)
            ids = np.nonzero(cnt[1:])[0] + 1
            sy = np.bincount(lab, weights=yy, minlength=n)[ids] / cnt[ids]
            sx = np.bincount(lab, weights=xx, minlength=n)[ids] / cnt[ids]
            rows.append(np.stack([ids, np.full(ids.shape, t), sy, sx], axis=1))
        pts = np.concatenate(rows) if rows else np.zeros((0, 4))
        return pts[np.lexsort((pts[:, 1], pts[:, 0]))]

    def ctc_man_track(self) -> str:
        """Cell Tracking Challenge `man_track.txt` text ("L B E P" per line)."""
        return "".join(
            f"{k} {tr.first} {tr.last} {tr.parent}\n" for k, tr in sorted(self.tracks.items())
        )


def make_timelapse(
    seed: int,
    *,
    num_frames: int = 30,
    height: int = 256,
    width: int = 256,
    num_cells: int = 8,
    style: Style = "fluorescence",
    dtype: type | np.dtype | str = np.uint8,
    divisions: bool = True,
    enter_leave: bool = True,
    touching: bool = True,
    noise: float = 1.0,
    blur: float = 1.0,
    drift: float = 0.2,
    cell_radius: float | None = None,
    handoffs: bool = False,
) -> TimeLapse:
    """Generate a deterministic synthetic cell time-lapse for `seed`.

    `num_cells` cells are in view at frame 0 (plus cells entering later and
    daughters).  `noise` scales shot/read noise (0 = none), `blur` is the PSF
    sigma in pixels (0 = none), `drift` is the fractional intensity change
    over the sequence (bleaching / lamp drift).  `cell_radius` defaults to a
    size giving ~14% initial coverage.  `handoffs` adds, for every cell that
    leaves, one that enters beside it through the same edge while it goes.
    """
    dt = np.dtype(dtype)
    if dt not in _FLUO_LEVELS:
        raise ValueError(f"dtype must be uint8 or uint16, got {dt}")
    if style not in ("fluorescence", "phase"):
        raise ValueError(f"style must be 'fluorescence' or 'phase', got {style!r}")
    if num_frames < 1 or height < 8 or width < 8 or num_cells < 0:
        raise ValueError("need num_frames >= 1, height/width >= 8 and num_cells >= 0")
    rng = np.random.default_rng(seed)
    shape = (num_frames, height, width)
    default_r = np.sqrt(0.14 * height * width / (max(num_cells, 1) * np.pi))
    r0 = cell_radius or float(np.clip(default_r, 5, 28))
    cells = _initial_cells(
        rng, num_frames, height, width, num_cells, r0, style, divisions, enter_leave, touching
    )
    if handoffs:  # drawn after everything else: movies without handoffs stay as they were
        leavers = [c for c in cells if np.any(c.bias) and not c.entering]
        uid = max((c.uid for c in cells), default=0) + 1
        cells += [handoff_entrant(rng, c, uid + k, r0 * rng.uniform(0.8, 1.2), style, height, width)
                  for k, c in enumerate(leavers)]
    labels = np.zeros(shape, np.int32)
    signal = np.zeros(shape, np.float32)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    parents = {c.uid: 0 for c in cells}
    next_uid = max((c.uid for c in cells), default=0) + 1
    cycle = max(1.5 * num_frames, 40.0)
    for t in range(num_frames):
        if t > 0:
            step_cells([c for c in cells if c.start < t], t, rng, height, width, touching)
            next_uid = _divide_due(cells, parents, next_uid, t, rng, height, width, style, cycle)
        active = sorted((c for c in cells if c.start <= t), key=lambda c: c.uid)
        fps = _claim_pixels(active, labels[t], height, width)
        if not touching:
            _separate_contacts(labels[t])
        area = np.bincount(labels[t].ravel(), minlength=next_uid)
        for c in active:
            if area[c.uid] > 0:
                c.seen = True
                first.setdefault(c.uid, t)
                last[c.uid] = t
            elif c.seen:  # left the field of view: the track ends for good
                cells.remove(c)
        _paint(active, fps, labels[t], signal[t], style, t)
    if style == "fluorescence":
        frames = _form_fluorescence(rng, signal, dt, noise, blur, drift)
    else:
        frames = _form_phase(rng, signal, labels, dt, noise, blur, drift)
    return _relabel(frames, labels, first, last, parents, style, seed)


def make_timelapse_batch(seeds: list[int] | range, **kwargs) -> list[TimeLapse]:
    """One :func:`make_timelapse` per seed with shared keyword arguments."""
    return [make_timelapse(int(s), **kwargs) for s in seeds]


def _divide_due(
    cells: list[Cell], parents: dict[int, int], next_uid: int, t: int, rng: np.random.Generator,
    H: int, W: int, style: str, cycle: float,
) -> int:
    """Replace mothers due to divide at frame t by two daughters; returns the next free uid.

    A mother that is not entirely inside the field of view postpones by a frame,
    so that both daughters are visible right after the mother's last frame.
    """
    for mother in [c for c in cells if c.division_frame is not None and c.division_frame <= t]:
        ext = mother.extent()
        y, x = mother.pos
        if not (mother.seen and ext <= y <= H - 1 - ext and ext <= x <= W - 1 - ext):
            mother.division_frame = t + 1
            continue
        kids = divide(mother, rng, (next_uid, next_uid + 1), t, style, cycle)
        next_uid += 2
        cells.remove(mother)
        for k in kids:
            parents[k.uid] = mother.uid
        cells.extend(kids)
    return next_uid


def _place(rng: np.random.Generator, placed: list[tuple[np.ndarray, float]], sampler, r: float) -> np.ndarray:
    """Rejection-sample a centre that keeps clear of already placed cells."""
    best, best_score = None, -np.inf
    for _ in range(60):
        p = sampler()
        score = min((np.hypot(*(p - q)) / (r + rq) for q, rq in placed), default=np.inf)
        if score >= 1.1:
            return p
        if score > best_score:
            best, best_score = p, score
    return best


def _initial_cells(
    rng: np.random.Generator, T: int, H: int, W: int, n: int, r0: float, style: str,
    divisions: bool, enter_leave: bool, touching: bool,
) -> list[Cell]:
    """Cells at frame 0 (with roles: touching pairs, leavers, dividers) plus later entrants."""
    radii = r0 * rng.uniform(0.8, 1.2, n)
    n_pair = max(1, n // 4) if touching and n >= 2 else 0
    n_leave = min(max(1, n // 8), n - 2 * n_pair) if enter_leave else 0
    n_leave = max(n_leave, 0)
    cells: list[Cell] = []
    placed: list[tuple[np.ndarray, float]] = []
    size = np.array([H, W], float)
    for i in range(n):
        r = radii[i]
        m = np.minimum(1.2 * r, size / 2 - 1)
        uniform = lambda: rng.uniform(m, size - m)  # noqa: E731
        sampler = uniform
        if i < 2 * n_pair and i % 2 == 1:
            anchor, ra = placed[-1]

            def sampler(anchor=anchor, ra=ra, r=r, m=m):
                a = rng.uniform(0, 2 * np.pi)
                p = anchor + 0.8 * (ra + r) * np.array([np.sin(a), np.cos(a)])
                return np.clip(p, m, size - m)

            pos = sampler()
            for _ in range(30):
                if all(np.hypot(*(pos - q)) > 1.05 * (r + rq) for q, rq in placed[:-1]):
                    break
                pos = sampler()
        elif 2 * n_pair <= i < 2 * n_pair + n_leave:
            axis, side = int(rng.integers(2)), int(rng.integers(2))

            def sampler(axis=axis, side=side, r=r, m=m):
                p = rng.uniform(m, size - m)
                d = rng.uniform(0.5, 1.2) * r
                p[axis] = d if side == 0 else size[axis] - d
                return p

            pos = _place(rng, placed, sampler, r)
        else:
            pos = _place(rng, placed, uniform, r)
        c = new_cell(rng, i + 1, pos, r, style)
        if i < 2 * n_pair:
            c.partner = i + 2 if i % 2 == 0 else i
        if 2 * n_pair <= i < 2 * n_pair + n_leave:
            out = np.zeros(2)
            out[axis] = -1.0 if side == 0 else 1.0
            c.bias = out * rng.uniform(2.2, 3.0)
            c.bias_from, c.wall = int(rng.integers(0, max(T // 4, 1))), False
        cells.append(c)
        placed.append((pos, r))
    if divisions and T >= 4:
        candidates = [c for c in cells if c.wall]
        n_div = min(max(1, round(n / 4)), len(candidates))
        lo = max(int(0.3 * T), PRE_DIVISION // 2, 1)
        hi = max(int(0.75 * T), lo + 1)
        for j in rng.choice(len(candidates), n_div, replace=False):
            candidates[j].division_frame = int(rng.integers(lo, hi))
    if enter_leave:
        for k in range(max(1, n // 8)):
            r = r0 * rng.uniform(0.8, 1.2)
            axis, side = int(rng.integers(2)), int(rng.integers(2))
            pos = rng.uniform(np.minimum(2 * r, size / 2), np.maximum(size - 2 * r, size / 2))
            pos[axis] = -(r + 2) if side == 0 else size[axis] + r + 2
            c = new_cell(rng, n + 1 + k, pos, r, style)
            inward = np.zeros(2)
            inward[axis] = 1.0 if side == 0 else -1.0
            c.bias, c.entering, c.wall = inward * rng.uniform(1.8, 2.6), True, False
            c.start = c.bias_from = int(rng.integers(0, max(T // 2, 1)))
            cells.append(c)
    return cells


def _claim_pixels(active: list[Cell], lab: np.ndarray, H: int, W: int) -> dict[int, Footprint]:
    """Rasterise the cells into `lab` using the smallest-normalised-distance rule."""
    best = np.full((H, W), np.inf, np.float32)
    fps: dict[int, Footprint] = {}
    for c in active:
        fp = footprint(c, H, W)
        if fp is None:
            continue
        b, lv = best[fp.sl], lab[fp.sl]
        win = (fp.nd < 1.0) & (fp.nd < b)
        b[win] = fp.nd[win]
        lv[win] = c.uid
        fps[c.uid] = fp
    return fps


def _separate_contacts(lab: np.ndarray) -> None:
    """Clear pixels of the higher id where two labels are 4-adjacent (1 px gaps)."""
    kill = np.zeros(lab.shape, bool)
    for a, b, ka, kb in (
        (lab[:-1], lab[1:], kill[:-1], kill[1:]),
        (lab[:, :-1], lab[:, 1:], kill[:, :-1], kill[:, 1:]),
    ):
        touch = (a > 0) & (b > 0) & (a != b)
        ka |= touch & (a > b)
        kb |= touch & (b > a)
    lab[kill] = 0


def _paint(
    active: list[Cell], fps: dict[int, Footprint], lab: np.ndarray, sig: np.ndarray, style: str, t: int
) -> None:
    """Write each visible cell's textured intensity (or optical thickness) into `sig`."""
    for c in active:
        fp = fps.get(c.uid)
        if fp is None:
            continue
        sel = lab[fp.sl] == c.uid
        if not sel.any():
            continue
        nd = fp.nd[sel]
        tex = c.texture[fp.ti[sel], fp.tj[sel]]
        if style == "fluorescence":
            boost = 1.0
            if c.division_frame is not None and t >= c.division_frame - PRE_DIVISION:
                boost = 1.0 + 0.3 * min(1.0, (t - c.division_frame + PRE_DIVISION) / PRE_DIVISION)
            val = c.brightness * boost * tex * (1.0 - 0.35 * nd**4)
        else:
            val = tex * (1.0 - 0.55 * nd**2)
        sv = sig[fp.sl]
        sv[sel] = val


def _illumination(rng: np.random.Generator, H: int, W: int, strength: float) -> np.ndarray:
    """Smooth uneven illumination field (vignetting with an off-centre optical axis)."""
    cy, cx = rng.uniform(0.3, 0.7) * H, rng.uniform(0.3, 0.7) * W
    yy, xx = np.ogrid[:H, :W]
    r2 = ((yy - cy) ** 2 + (xx - cx) ** 2) / (0.5 * (H * H + W * W))
    return (1.0 - strength * r2).astype(np.float32)


def _form_fluorescence(
    rng: np.random.Generator, signal: np.ndarray, dt: np.dtype, noise: float, blur: float, drift: float
) -> np.ndarray:
    """Bright-on-dark image formation: PSF blur, bleaching, vignetting, shot + read noise."""
    T, H, W = signal.shape
    bg, peak = _FLUO_LEVELS[dt]
    illum = _illumination(rng, H, W, rng.uniform(0.15, 0.35))
    haze = 1.0 + 0.12 * smooth_noise(rng, (H, W), max(H, W) / 16)
    s = np.linspace(0.0, 1.0, T, dtype=np.float32)[:, None, None]  # sequence progress
    if blur > 0:
        signal = ndi.gaussian_filter(signal, (0, blur, blur))
    img = (bg * (1.0 + 0.3 * drift * s)) * (illum * haze) + ((peak - bg) * (1.0 - drift * s)) * illum * signal
    if noise > 0:
        # shot noise (Gaussian approximation of Poisson; >= ~40 photons everywhere) + read noise
        gain = peak / (600.0 / noise**2)  # ~600 photons at peak for noise=1
        std = np.sqrt(np.maximum(img, 0) * gain + (0.006 * peak * noise) ** 2)
        img += std * rng.standard_normal(img.shape, dtype=np.float32)
    return np.clip(np.rint(img), 0, np.iinfo(dt).max).astype(dt)


def _form_phase(
    rng: np.random.Generator, opd: np.ndarray, labels: np.ndarray, dt: np.dtype,
    noise: float, blur: float, drift: float,
) -> np.ndarray:
    """Phase-contrast-like image formation: grey background, dark cells with bright halos."""
    T, H, W = opd.shape
    bg = _PHASE_BG[dt]
    fg = (labels > 0).astype(np.float32)
    halo = ndi.gaussian_filter(fg, (0, 2.5, 2.5)) - fg
    contact = np.zeros(labels.shape, np.float32)
    for a, b, ca, cb in (
        (labels[:, :-1], labels[:, 1:], contact[:, :-1], contact[:, 1:]),
        (labels[:, :, :-1], labels[:, :, 1:], contact[:, :, :-1], contact[:, :, 1:]),
    ):
        edge = (a > 0) & (b > 0) & (a != b)
        ca[edge] = 1.0
        cb[edge] = 1.0
    texture = 1.0 + 0.03 * smooth_noise(rng, (H, W), 5.0) + 0.015 * smooth_noise(rng, (H, W), 1.0)
    illum = _illumination(rng, H, W, rng.uniform(0.05, 0.15)) * texture
    s = np.linspace(0.0, 1.0, T, dtype=np.float32)[:, None, None] - 0.5  # sequence progress
    flicker = (1.0 + drift * s + 0.004 * rng.standard_normal((T, 1, 1))).astype(np.float32)
    img = (bg * illum) * flicker * (1.0 - 0.5 * opd + 1.4 * halo + 0.5 * contact)
    if blur > 0:
        img = ndi.gaussian_filter(img, (0, blur, blur))
    if noise > 0:
        img += np.float32(0.025 * bg * noise) * rng.standard_normal(img.shape, dtype=np.float32)
    return np.clip(np.rint(img), 0, np.iinfo(dt).max).astype(dt)


def _relabel(
    frames: np.ndarray, labels: np.ndarray, first: dict[int, int], last: dict[int, int],
    parents: dict[int, int], style: str, seed: int,
) -> TimeLapse:
    """Renumber visible tracks 1..N by first appearance and assemble the result."""
    order = sorted(first, key=lambda u: (first[u], u))
    new = {u: i + 1 for i, u in enumerate(order)}
    lut = np.zeros(max(first, default=0) + 1 if first else 1, np.int32)
    for u, k in new.items():
        lut[u] = k
    labels = lut[labels] if first else labels
    tracks = {new[u]: Track(new[u], first[u], last[u], new.get(parents.get(u, 0), 0)) for u in order}
    lineage = {k: tr.parent for k, tr in tracks.items()}
    return TimeLapse(frames=frames, labels=labels, lineage=lineage, tracks=tracks, style=style, seed=seed)
