"""Shared pieces of the frame sources: the :class:`FrameSource` base class,
:class:`FrameEvictedError`, the file suffixes and small validation helpers.
"""

from __future__ import annotations

import operator
import threading
from typing import Any, Sequence

import numpy as np

from ..intensity import IntensityNormalizer, fit_normalizer, select_channels

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
TIFF_SUFFIXES = (".tif", ".tiff")
_FIT_SAMPLE_FRAMES = 16


class FrameEvictedError(IndexError):
    """A frame of a :class:`StreamSource` that is no longer kept was read."""


class FrameSource:
    """Base class of all frame sources (lazy, random access, context manager).

    Reads are serialized by a lock, so a prefetch thread may share a source.
    """

    description: str = "frames"
    growing: bool = False  # frames keep arriving (a live stream): its length is not the video's length

    def __init__(self, *, normalizer: IntensityNormalizer | None = None,
                 channels: Sequence[int] | None = None) -> None:
        self._normalizer = normalizer
        self._channel_select = None if channels is None else tuple(int(c) for c in channels)
        self._frame_shape: tuple[int, ...] = ()  # (H, W) or (H, W, C), set by subclasses
        self._dtype = np.dtype(np.uint8)
        self._closed = False
        self._lock = threading.RLock()

    # -- geometry -------------------------------------------------------
    @property
    def num_frames(self) -> int:
        """Number of frames (grows for a :class:`StreamSource`)."""
        raise NotImplementedError

    def __len__(self) -> int:
        return self.num_frames

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """Raw shape of one frame: (H, W) or (H, W, C)."""
        return self._frame_shape

    @property
    def height(self) -> int:
        return self.frame_shape[0]

    @property
    def width(self) -> int:
        return self.frame_shape[1]

    @property
    def channels(self) -> int:
        """Raw channel count (1 for 2-D frames)."""
        shape = self.frame_shape
        return shape[2] if len(shape) == 3 else 1

    @property
    def dtype(self) -> np.dtype:
        """Numpy dtype of the raw data."""
        return self._dtype

    # -- reading --------------------------------------------------------
    def read_raw(self, i: int) -> np.ndarray:
        """Raw frame ``i``, (H, W) or (H, W, C); may be a view, do not modify."""
        with self._lock:
            i = self._check_index(i)
            raw = np.asarray(self._read_raw(i))
        if raw.shape != self.frame_shape:
            raise ValueError(
                f"frame {i} of {self.description} has shape {raw.shape}, expected {self.frame_shape}")
        return raw

    def read(self, i: int) -> np.ndarray:
        """Frame ``i`` as float32 (H, W, 3) in [0, 1]."""
        raw = self.read_raw(i)
        return self.normalizer.apply(raw, index=operator.index(i))

    def _read_raw(self, i: int) -> np.ndarray:
        raise NotImplementedError

    def _check_index(self, i: Any) -> int:
        if self._closed:
            raise ValueError(f"{self.description} is closed")
        try:
            i = operator.index(i)
        except TypeError:
            raise TypeError(f"frame index must be an integer, got {type(i).__name__}") from None
        n = self.num_frames
        if i < 0 or i >= n:
            hint = " (negative indices are not supported)" if i < 0 else ""
            raise IndexError(
                f"frame {i} is out of range for a video of {_plural(n, 'frame')}{hint} ({self.description})")
        return i

    # -- intensity ------------------------------------------------------
    @property
    def normalizer(self) -> IntensityNormalizer:
        """The intensity mapping used by :meth:`read`; fitted on first use."""
        with self._lock:
            if self._normalizer is None:
                self.fit_intensity()
            return self._normalizer

    @normalizer.setter
    def normalizer(self, value: IntensityNormalizer | None) -> None:
        if value is not None and not isinstance(value, IntensityNormalizer):
            raise TypeError(f"normalizer must be an IntensityNormalizer, got {type(value).__name__}")
        if value is not None and value.channels is not None and self.num_frames > 0:
            select_channels(np.zeros((1, 1, self.channels), np.uint8), value.channels)
        self._normalizer = value

    def fit_intensity(self, mode: str | None = None, **options: Any) -> IntensityNormalizer:
        """Fit, and use from now on, one normalizer from up to 16 evenly spaced frames.

        ``mode`` and ``options`` (percentiles, channels) are those of
        :func:`fit_normalizer`; uint8 data default to mode "none".
        """
        if self.num_frames == 0:
            raise ValueError(f"cannot fit intensities: {self.description} has no frames yet")
        options.setdefault("channels", self._channel_select)
        needs_frames = (mode or ("none" if self.dtype == np.uint8 else "percentile")) != "none"
        with self._lock:
            idx = self._sample_indices() if needs_frames else []
            frames = [self.read_raw(i) for i in idx]
            self.normalizer = fit_normalizer(frames, self.dtype, mode, frame_indices=idx, **options)
            return self._normalizer

    def _sample_indices(self) -> list[int]:
        first, n = self._kept_range()
        return sorted({first + round(x) for x in np.linspace(0, n - 1, min(n, _FIT_SAMPLE_FRAMES))})

    def _kept_range(self) -> tuple[int, int]:
        """(first index, count) of the frames that can still be read."""
        return 0, self.num_frames

    # -- lifetime -------------------------------------------------------
    def close(self) -> None:
        """Release files/handles; reading afterwards raises ``ValueError``."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._release()

    def _release(self) -> None:
        """Free what the subclass holds (called once, by :meth:`close`)."""

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"<{name} {self.description}: {self.num_frames} x {self._frame_shape} {self._dtype}>"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _check_geometry(num: int, frame_shape: tuple[int, ...], what: str) -> None:
    if num == 0:
        raise ValueError(f"{what} is empty (0 frames)")
    if 0 in frame_shape:
        raise ValueError(f"{what} has zero-size frames {frame_shape}")


def _numeric_dtype(dtype: Any, what: str) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype.kind not in "uif":
        raise ValueError(f"{what} has unsupported dtype {dtype}; expected integer or float pixels")
    return dtype
