"""Turn raw microscopy / video pixel data into model-ready RGB.

An :class:`IntensityNormalizer` maps one raw frame of any numeric dtype and
any channel count to a float32 ``(H, W, 3)`` image in ``[0, 1]``. It is
fitted once per video (:func:`fit_normalizer`) so that intensities do not
flicker from frame to frame, and it round-trips through a plain dict so a
session save file can restore exactly the same mapping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

__all__ = ["IntensityNormalizer", "fit_normalizer", "MODES"]

MODES = ("percentile", "minmax", "none")
# At most this many pixels (over all sample frames) feed one fit.
_FIT_PIXEL_BUDGET = 1_000_000


@dataclass(frozen=True)
class IntensityNormalizer:
    """A fixed mapping from raw frames to float32 RGB in ``[0, 1]``.

    mode:
      * ``"percentile"``: per channel, ``low``/``high`` are the
        ``low_percentile``/``high_percentile`` of the fitted sample;
      * ``"minmax"``: ``low``/``high`` are the sample minimum/maximum;
      * ``"none"``: no stretch: uint8 is divided by 255 (bit-exact
        ``frame.astype(np.float32) / 255``), other integers by their dtype
        maximum, floats are taken as already in ``[0, 1]``.
    low/high: fitted values, one per used channel (empty for ``"none"``).
    channels: input channel indices mapped to R, G, B (1 to 3 of them;
      one index gives grey). ``None`` means all channels when the data has
      at most 3, else the first three.
    """

    mode: str = "percentile"
    low_percentile: float = 1.0
    high_percentile: float = 99.8
    low: tuple[float, ...] = field(default=())
    high: tuple[float, ...] = field(default=())
    channels: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown normalization mode {self.mode!r}; expected one of {MODES}")
        if not 0.0 <= self.low_percentile < self.high_percentile <= 100.0:
            raise ValueError(
                "percentiles must satisfy 0 <= low < high <= 100, got "
                f"low={self.low_percentile}, high={self.high_percentile}"
            )
        object.__setattr__(self, "low", tuple(float(v) for v in self.low))
        object.__setattr__(self, "high", tuple(float(v) for v in self.high))
        if len(self.low) != len(self.high) or len(self.low) > 3:
            raise ValueError(
                f"low/high must hold the same number (at most 3) of values, got {self.low} and {self.high}"
            )
        if not all(math.isfinite(v) for v in self.low + self.high):
            raise ValueError("low/high values must be finite")
        if self.channels is not None:
            chans = tuple(int(c) for c in self.channels)
            if not 1 <= len(chans) <= 3 or min(chans) < 0:
                raise ValueError(f"channels must be 1 to 3 non-negative indices, got {self.channels!r}")
            object.__setattr__(self, "channels", chans)

    @property
    def fitted(self) -> bool:
        """True when the normalizer can be applied (fitted, or mode "none")."""
        return self.mode == "none" or len(self.low) > 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict; :meth:`from_dict` restores an equal normalizer."""
        return {
            "mode": self.mode,
            "low_percentile": self.low_percentile,
            "high_percentile": self.high_percentile,
            "low": list(self.low),
            "high": list(self.high),
            "channels": None if self.channels is None else list(self.channels),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "IntensityNormalizer":
        """Rebuild a normalizer saved with :meth:`to_dict`."""
        unknown = set(data) - {"mode", "low_percentile", "high_percentile", "low", "high", "channels"}
        if unknown:
            raise ValueError(f"unknown intensity normalizer keys: {sorted(unknown)}")
        kwargs = dict(data)
        if kwargs.get("channels") is not None:
            kwargs["channels"] = tuple(kwargs["channels"])
        return cls(**kwargs)

    def apply(self, frame: np.ndarray, index: int | None = None) -> np.ndarray:
        """Map one raw frame (H, W) or (H, W, C) to float32 (H, W, 3) in [0, 1].

        ``index`` only serves error messages ("frame 3 contains NaN ...").
        """
        arr = _check_frame(frame, index)
        sel = select_channels(arr, self.channels)  # (H, W, k), k in 1..3
        if self.mode == "none":
            out = _scale_none(sel)
        else:
            out = self._stretch(sel)
        return _to_rgb(out)

    def _stretch(self, sel: np.ndarray) -> np.ndarray:
        if not self.fitted:
            raise ValueError(f"the {self.mode!r} normalizer has not been fitted; use fit_normalizer()")
        k = sel.shape[-1]
        if len(self.low) != k:
            raise ValueError(
                f"the normalizer was fitted for {len(self.low)} channel(s) but the frame has {k}"
            )
        work = np.float64 if sel.dtype.itemsize > 4 else np.float32
        low = np.asarray(self.low, dtype=work)  # (k,)
        span = np.asarray(self.high, dtype=work) - low  # (k,)
        flat = span <= 0
        out = (sel.astype(work) - low) / np.where(flat, 1, span)
        out[..., flat] = 0  # constant channel: no contrast to show
        return np.clip(out, 0.0, 1.0, out=out).astype(np.float32, copy=False)


def fit_normalizer(
    sample_frames: Sequence[np.ndarray],
    dtype: Any,
    mode: str | None = None,
    *,
    low_percentile: float = 1.0,
    high_percentile: float = 99.8,
    channels: Sequence[int] | None = None,
    frame_indices: Sequence[int] | None = None,
) -> IntensityNormalizer:
    """Fit one normalizer for a whole video from a sample of its raw frames.

    ``mode`` defaults to ``"none"`` for uint8 data (no frames needed) and to
    ``"percentile"`` otherwise. ``frame_indices`` (one per sample frame) only
    serves error messages.
    """
    dtype = np.dtype(dtype)
    if mode is None:
        mode = "none" if dtype == np.uint8 else "percentile"
    chans = None if channels is None else tuple(int(c) for c in channels)
    base = IntensityNormalizer(
        mode=mode, low_percentile=low_percentile, high_percentile=high_percentile, channels=chans
    )
    if mode == "none":
        for n, frame in enumerate(sample_frames):  # still validate channel choice
            select_channels(_check_frame(frame, _index_at(frame_indices, n)), chans)
        return base
    if len(sample_frames) == 0:
        raise ValueError(f"cannot fit a {mode!r} normalizer without any sample frame")
    values = _sample_values(sample_frames, chans, frame_indices)  # (N, k)
    if mode == "percentile":
        low = np.percentile(values, low_percentile, axis=0)
        high = np.percentile(values, high_percentile, axis=0)
    else:
        low, high = values.min(axis=0), values.max(axis=0)
    return IntensityNormalizer(
        mode=mode,
        low_percentile=low_percentile,
        high_percentile=high_percentile,
        low=tuple(float(v) for v in low),
        high=tuple(float(v) for v in high),
        channels=chans,
    )


def select_channels(arr: np.ndarray, channels: Sequence[int] | None) -> np.ndarray:
    """The 1 to 3 channels used for display, as (H, W, k); no copy when possible."""
    if arr.ndim == 2:
        arr = arr[:, :, None]  # (H, W, 1)
    n = arr.shape[2]
    if channels is None:
        return arr if n <= 3 else arr[:, :, :3]
    bad = [c for c in channels if not 0 <= c < n]
    if bad:
        raise ValueError(
            f"channel index {bad[0]} is out of range for data with {n} channel(s) "
            f"(valid: 0 to {n - 1})"
        )
    return arr[:, :, list(channels)]


def _check_frame(frame: Any, index: int | None) -> np.ndarray:
    arr = np.asarray(frame)
    where = "frame" if index is None else f"frame {index}"
    if arr.ndim not in (2, 3):
        raise ValueError(f"{where} must be 2-D (H, W) or 3-D (H, W, C), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{where} is empty (shape {arr.shape})")
    if arr.dtype.kind not in "uif":
        raise ValueError(f"{where} has unsupported dtype {arr.dtype}; expected integer or float data")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{where} contains NaN or infinite values")
    return arr


def _scale_none(sel: np.ndarray) -> np.ndarray:
    if sel.dtype == np.uint8:
        return sel.astype(np.float32) / 255  # bit-exact with the reference loader
    if sel.dtype.kind in "ui":
        out = sel.astype(np.float32) / np.float32(np.iinfo(sel.dtype).max)
    else:
        out = sel.astype(np.float32)  # copy: clipped in place below
    return np.clip(out, 0.0, 1.0, out=out)


def _to_rgb(out: np.ndarray) -> np.ndarray:
    """(H, W, k) float32 -> (H, W, 3): grey replicated, 2 channels padded."""
    k = out.shape[2]
    if k == 3:
        return np.ascontiguousarray(out)
    if k == 1:
        return np.repeat(out, 3, axis=2)
    pad = np.zeros(out.shape[:2] + (3 - k,), dtype=np.float32)
    return np.concatenate([out, pad], axis=2)


def _index_at(indices: Sequence[int] | None, n: int) -> int | None:
    return None if indices is None else int(indices[n])


def _sample_values(
    frames: Sequence[np.ndarray], channels: tuple[int, ...] | None, indices: Sequence[int] | None
) -> np.ndarray:
    """Pixel values of all sample frames, strided to a fixed budget: (N, k)."""
    budget = max(1, _FIT_PIXEL_BUDGET // len(frames))
    parts, k0 = [], None
    for n, frame in enumerate(frames):
        sel = select_channels(_check_frame(frame, _index_at(indices, n)), channels)
        h, w, k = sel.shape
        if k0 is not None and k != k0:
            raise ValueError(f"sample frames have different channel counts ({k0} and {k})")
        k0 = k
        step = max(1, math.ceil(math.sqrt(h * w / budget)))
        parts.append(np.asarray(sel[::step, ::step]).reshape(-1, k))
    return np.concatenate(parts, axis=0)
