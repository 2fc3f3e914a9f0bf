"""Seeded synthetic RGB videos of textured shapes moving over a textured
background, occluding each other, with exact visible (modal) and full
(amodal) per-object masks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from ._common import fold_into, smooth_noise

KINDS = ("ellipse", "polygon", "star", "rounded_rect")
_TEX = 96  # object texture grid covering [-1, 1]^2 of the object's local frame
_SHADOW = (4, 5)  # drop-shadow offset (dy, dx) in pixels


@dataclass
class SceneVideo:
    """A synthetic RGB video with exact ground truth.

    `frames` (T,H,W,3) uint8; `labels` (T,H,W) int32 visible part of each
    object (ids 1..N, 0 = background); `depth_order` ids from back to front
    (a later object occludes an earlier one); `amodal` (T,N,H,W) bool full
    silhouettes ignoring occlusion (index i is id i+1); `kinds` id -> shape.
    """

    frames: np.ndarray
    labels: np.ndarray
    depth_order: list[int]
    amodal: np.ndarray
    kinds: dict[int, str]
    seed: int

    @property
    def num_frames(self) -> int:
        """Number of frames T."""
        return int(self.frames.shape[0])

    def visible_area(self) -> np.ndarray:
        """(T, N) visible pixel count of every object."""
        n = self.amodal.shape[1]
        return np.stack([np.bincount(lab.ravel(), minlength=n + 1)[1:] for lab in self.labels])


@dataclass
class _Shape:
    """Geometry, texture and trajectory of one object."""

    kind: str
    radius: float  # pixels, at scale 1
    params: dict
    texture: np.ndarray  # (_TEX, _TEX, 3) float32 in [0, 1]
    center: np.ndarray  # (T, 2) y, x
    scale: np.ndarray  # (T,)
    angle: np.ndarray  # (T,)


def make_scene_video(
    seed: int,
    *,
    num_frames: int = 24,
    height: int = 192,
    width: int = 256,
    num_objects: int = 3,
    noise: float = 3.0,
    frames: Sequence[int] | None = None,
) -> SceneVideo:
    """Generate a deterministic synthetic scene video for `seed`.

    Each object after the first passes over an object behind it around the
    middle of the sequence, so occlusions always happen when num_objects >= 2.
    `noise` is the std of the additive pixel noise in grey levels.
    `frames`: render only these frame indices of the `num_frames`-long video
    (in that order; motion is that of the whole video). Their noise is drawn
    per frame, so they match each other across calls but not the full render.
    """
    if num_frames < 1 or height < 16 or width < 16 or num_objects < 0:
        raise ValueError("need num_frames >= 1, height/width >= 16 and num_objects >= 0")
    rng = np.random.default_rng(seed)
    T, H, W = num_frames, height, width
    depth_order = [int(i) + 1 for i in rng.permutation(num_objects)]
    hue0 = rng.random()
    shapes: dict[int, _Shape] = {}
    for rank, oid in enumerate(depth_order):
        hue = (hue0 + rank / max(num_objects, 1) + rng.uniform(-0.05, 0.05)) % 1.0
        shapes[oid] = _make_shape(rng, T, H, W, hue, [shapes[o] for o in depth_order[:rank]])
    background = _background(rng, H, W)
    pad = (background.shape[0] - H) // 2
    k = np.arange(T, dtype=np.float64)
    pan_y = np.rint(pad + 0.8 * pad * np.sin(2 * np.pi * k / max(3 * T, 1) + rng.uniform(0, 6.3))).astype(int)
    pan_x = np.rint(pad + 0.8 * pad * np.sin(2 * np.pi * k / max(2 * T, 1) + rng.uniform(0, 6.3))).astype(int)
    light = rng.normal(0, 1, 2)
    light /= np.hypot(*light) + 1e-9
    chosen = list(range(T)) if frames is None else [int(t) for t in frames]
    if any(not 0 <= t < T for t in chosen):
        raise ValueError(f"frames must lie in [0, {T}): got {chosen}")
    n = len(chosen)
    image = np.empty((n, H, W, 3), np.float32)
    labels = np.zeros((n, H, W), np.int32)
    amodal = np.zeros((n, num_objects, H, W), bool)
    for i, t in enumerate(chosen):
        canvas = background[pan_y[t] : pan_y[t] + H, pan_x[t] : pan_x[t] + W].copy()
        for oid in depth_order:
            s = shapes[oid]
            sl, inside, colour = _rasterise(s, t, H, W, light)
            if sl is None:
                continue
            amodal[i, oid - 1][sl] = inside
            _cast_shadow(canvas, inside, sl, amodal[i, oid - 1])
            cv, lv = canvas[sl], labels[i][sl]
            cv[inside] = colour[inside]
            lv[inside] = oid
        image[i] = canvas
    image = ndi.gaussian_filter(image, (0, 0.6, 0.6, 0), truncate=2.0)
    if noise > 0:
        scale = np.float32(noise / 255.0)
        if frames is None:  # one draw for the whole video (the original stream)
            image += scale * rng.standard_normal(image.shape, dtype=np.float32)
        else:
            for i, t in enumerate(chosen):
                image[i] += scale * np.random.default_rng((seed, t)).standard_normal(image.shape[1:], np.float32)
    out = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    kinds = {oid: s.kind for oid, s in shapes.items()}
    return SceneVideo(out, labels, depth_order, amodal, kinds, seed)


def _cast_shadow(canvas: np.ndarray, inside: np.ndarray, sl: tuple[slice, slice], own: np.ndarray) -> None:
    """Darken what lies under the object's silhouette shifted by the shadow offset."""
    dy, dx = _SHADOW
    H, W = own.shape
    y0, x0 = sl[0].start + dy, sl[1].start + dx
    y1, x1 = min(sl[0].stop + dy, H), min(sl[1].stop + dx, W)
    if y0 >= y1 or x0 >= x1:
        return
    target = (slice(y0, y1), slice(x0, x1))
    shadow = inside[: y1 - y0, : x1 - x0] & ~own[target]
    canvas[target] *= np.where(shadow, np.float32(0.62), np.float32(1.0))[..., None]


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    """HSV (all in [0, 1]) to an RGB float triple."""
    h6 = (h % 1.0) * 6.0
    c = np.clip([abs(h6 - 3) - 1, 2 - abs(h6 - 2), 2 - abs(h6 - 4)], 0, 1)
    return (v * (1 - s + s * c)).astype(np.float32)


def _pattern(rng: np.random.Generator, n: int, scale: float) -> np.ndarray:
    """A random (n, n) mixing pattern in [0, 1]: stripes, checker, spots, rings or noise."""
    g = np.linspace(-1, 1, n, dtype=np.float32)
    y, x = g[:, None], g[None, :]
    a = rng.uniform(0, np.pi)
    u = x * np.cos(a) + y * np.sin(a)
    v = -x * np.sin(a) + y * np.cos(a)
    f = rng.uniform(2.0, 5.0) * scale
    kind = rng.choice(["stripes", "checker", "spots", "rings", "noise"])
    if kind == "stripes":
        p = 0.5 + 0.5 * np.tanh(3 * np.sin(np.pi * f * u))
    elif kind == "checker":
        p = 0.5 + 0.5 * np.tanh(3 * np.sin(np.pi * f * u) * np.sin(np.pi * f * v))
    elif kind == "rings":
        p = 0.5 + 0.5 * np.tanh(3 * np.sin(np.pi * f * np.hypot(u, v + 0.2)))
    elif kind == "spots":
        p = np.clip(smooth_noise(rng, (n, n), n / (6 * f)) - 0.6, 0, 1) * 3
    else:
        p = 0.5 + 0.25 * smooth_noise(rng, (n, n), n / (3 * f))
    return np.clip(p, 0, 1).astype(np.float32)


def _make_texture(rng: np.random.Generator, hue: float) -> np.ndarray:
    """Two-colour patterned object texture with grain."""
    c1 = _hsv(hue, rng.uniform(0.55, 0.95), rng.uniform(0.65, 0.95))
    c2 = _hsv(hue + rng.uniform(-0.12, 0.12), rng.uniform(0.3, 0.9), rng.uniform(0.2, 0.55))
    p = _pattern(rng, _TEX, 1.0)[..., None]
    tex = c1 * (1 - p) + c2 * p
    tex *= 1.0 + 0.06 * smooth_noise(rng, (_TEX, _TEX), 1.0)[..., None]
    return np.clip(tex, 0, 1).astype(np.float32)


def _background(rng: np.random.Generator, H: int, W: int) -> np.ndarray:
    """Larger-than-frame muted background (gradient + pattern + noise) for camera panning."""
    pad = max(8, min(H, W) // 8)
    h, w = H + 2 * pad, W + 2 * pad
    hue = rng.random()
    a = _hsv(hue, rng.uniform(0.05, 0.3), rng.uniform(0.35, 0.7))
    b = _hsv(hue + rng.uniform(-0.2, 0.2), rng.uniform(0.05, 0.3), rng.uniform(0.3, 0.75))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(ang) * xx / w + np.sin(ang) * yy / h)
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    bg = a * (1 - ramp[..., None]) + b * ramp[..., None]
    n = max(h, w)
    pat = _pattern(rng, n, rng.uniform(2.0, 5.0))[:h, :w, None]
    bg *= 1.0 + rng.uniform(0.06, 0.16) * (pat - 0.5)
    colour_noise = np.stack([smooth_noise(rng, (h, w), n / 20) for _ in range(3)], axis=-1)
    bg *= 1.0 + 0.05 * colour_noise + 0.03 * smooth_noise(rng, (h, w), 0.8)[..., None]
    return np.clip(bg, 0, 1).astype(np.float32)


def _make_shape(
    rng: np.random.Generator, T: int, H: int, W: int, hue: float, behind: list[_Shape]
) -> _Shape:
    """A random shape whose smooth path crosses one of the objects behind it."""
    kind = str(rng.choice(KINDS))
    radius = rng.uniform(0.14, 0.22) * min(H, W)
    params: dict = {}
    if kind == "ellipse":
        params["b"] = rng.uniform(0.5, 0.9)
    elif kind == "rounded_rect":
        params["b"] = rng.uniform(0.45, 0.85)
        params["c"] = rng.uniform(0.1, 0.4) * params["b"]
    else:
        n = int(rng.integers(5, 8)) if kind == "star" else int(rng.integers(3, 8))
        m = 2 * n if kind == "star" else n
        ang = np.sort((np.arange(m) + rng.uniform(-0.2, 0.2, m) * (kind != "star")) * 2 * np.pi / m)
        if kind == "star":
            rad = np.where(np.arange(m) % 2 == 0, 1.0, rng.uniform(0.4, 0.6))
        else:
            rad = rng.uniform(0.75, 1.0, m)
        params["vy"], params["vx"] = rad * np.sin(ang), rad * np.cos(ang)
        params["ang"] = ang
    k = np.arange(T, dtype=np.float64)
    direction = rng.uniform(0, 2 * np.pi)
    unit = np.array([np.sin(direction), np.cos(direction)])
    wob_a = rng.uniform(0.0, 0.15, 2) * radius
    wob_f = rng.uniform(0.5, 1.5, 2) * 2 * np.pi / max(T, 2)
    wob_p = rng.uniform(0, 2 * np.pi, 2)
    wobble = wob_a * np.sin(np.outer(k, wob_f) + wob_p)
    if behind:
        other = behind[int(rng.integers(len(behind)))]
        mid = np.array([H / 2, W / 2])
        window = np.arange(int(0.3 * (T - 1)), int(0.7 * (T - 1)) + 1)
        off = np.abs(other.center[window] - mid) / mid
        central = window[(off < 0.6).all(axis=1)]
        if len(central):
            tc = int(rng.choice(central))
        else:
            tc = int(window[np.argmin(np.hypot(*(other.center[window] - mid).T))])
        meet = other.center[tc] + rng.normal(0, 0.2 * other.radius, 2)
        speed = rng.uniform(1.2, 1.8) * 2 * (radius + other.radius) / max(T - 1, 1)
        lo_t, hi_t = max(tc - 1, 0), min(tc + 1, T - 1)
        v_other = (other.center[hi_t] - other.center[lo_t]) / max(hi_t - lo_t, 1)
        for _ in range(20):  # make sure the two objects really move across each other
            if np.hypot(*(unit * speed - v_other)) >= speed:
                break
            direction = rng.uniform(0, 2 * np.pi)
            unit = np.array([np.sin(direction), np.cos(direction)])
    else:
        tc = (T - 1) // 2
        meet = rng.uniform([0.3 * H, 0.3 * W], [0.7 * H, 0.7 * W])
        speed = rng.uniform(0.3, 0.7) * max(H, W) / max(T - 1, 1)
    path = meet + np.outer(k - tc, unit * speed) + wobble - wobble[tc]
    lim = 0.3 * radius
    center = np.stack([fold_into(path[:, 0], -lim, H + lim), fold_into(path[:, 1], -lim, W + lim)], axis=1)
    amp, freq = rng.uniform(0.03, 0.12), rng.uniform(0.5, 1.5) * 2 * np.pi / max(T, 2)
    scale = 1.0 + amp * np.sin(freq * k + rng.uniform(0, 2 * np.pi))
    angle = rng.uniform(0, 2 * np.pi) + rng.uniform(-0.06, 0.06) * k
    return _Shape(kind, radius, params, _make_texture(rng, hue), center, scale, angle)


def _inside(s: _Shape, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Boolean silhouette test in the object's normalised local frame."""
    p = s.params
    if s.kind == "ellipse":
        return u * u + (v / p["b"]) ** 2 <= 1.0
    if s.kind == "rounded_rect":
        qx, qy = np.abs(u) - (1.0 - p["c"]), np.abs(v) - (p["b"] - p["c"])
        out = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0)
        return out <= p["c"]
    # star-shaped polygon: boundary radius along the ray through the pixel
    phi = np.mod(np.arctan2(v, u), 2 * np.pi)
    ang, vy, vx = p["ang"], p["vy"], p["vx"]
    i = np.searchsorted(ang, phi, side="right") - 1
    j = (i + 1) % len(ang)
    ax, ay, bx, by = vx[i], vy[i], vx[j], vy[j]
    cross_ab = ax * by - ay * bx
    denom = np.cos(phi) * (by - ay) - np.sin(phi) * (bx - ax)
    with np.errstate(divide="ignore", invalid="ignore"):
        rb = np.where(np.abs(denom) > 1e-9, cross_ab / denom, 1.0)
    return np.hypot(u, v) <= rb


def _rasterise(s: _Shape, t: int, H: int, W: int, light: np.ndarray):
    """(slices, silhouette, shaded colour) of shape `s` in frame `t` over its clipped box."""
    r = s.radius * s.scale[t]
    cy, cx = s.center[t]
    y0, y1 = max(int(cy - r) - 2, 0), min(int(cy + r) + 3, H)
    x0, x1 = max(int(cx - r) - 2, 0), min(int(cx + r) + 3, W)
    if y0 >= y1 or x0 >= x1:
        return None, None, None
    dy = (np.arange(y0, y1, dtype=np.float32) - cy)[:, None] / r
    dx = (np.arange(x0, x1, dtype=np.float32) - cx)[None, :] / r
    c, sn = np.cos(s.angle[t]), np.sin(s.angle[t])
    u = dx * c + dy * sn
    v = dy * c - dx * sn
    inside = _inside(s, u, v)
    half = (_TEX - 1) / 2.0
    ti = np.clip(np.rint((v + 1) * half), 0, _TEX - 1).astype(np.intp)
    tj = np.clip(np.rint((u + 1) * half), 0, _TEX - 1).astype(np.intp)
    shade = 1.0 - 0.22 * (dy * light[0] + dx * light[1]) - 0.12 * (dx * dx + dy * dy)
    colour = s.texture[ti, tj] * shade[..., None]
    return (slice(y0, y1), slice(x0, x1)), inside, colour
