"""In-memory and pushed frames: numpy/lazy arrays, lists of frames, live streams."""

from __future__ import annotations

import collections
from typing import Any, Sequence

import numpy as np

from .base import FrameEvictedError, FrameSource, _check_geometry, _numeric_dtype, _plural


class ArraySource(FrameSource):
    """Frames of a numpy array or lazy array-like (dask, zarr, h5py, memmap).

    Accepts (T, H, W), (T, H, W, C) or a single (H, W) image; only one frame
    is fetched at a time with ``data[..., i, ...]`` on the time axis.
    """

    def __init__(self, data: Any, *, time_axis: int = 0, description: str | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        shape = tuple(int(s) for s in data.shape)
        kind = "array" if isinstance(data, np.ndarray) else type(data).__name__
        self.description = description or f"{kind} of shape {shape}"
        if len(shape) not in (2, 3, 4):
            raise ValueError("expected an array of shape (T, H, W) or (T, H, W, C) or a 2-D image, "
                             f"got a {len(shape)}-D {self.description}")
        self._data = data
        if len(shape) == 2:
            self._time_axis, self._num = None, 1
            self._frame_shape = shape
        else:
            if not -len(shape) <= time_axis < len(shape):
                raise ValueError(f"time_axis {time_axis} is invalid for a {len(shape)}-D {self.description}")
            self._time_axis = time_axis % len(shape)
            self._num = shape[self._time_axis]
            self._frame_shape = shape[:self._time_axis] + shape[self._time_axis + 1:]
        _check_geometry(self._num, self._frame_shape, self.description)
        dtype = getattr(data, "dtype", None)  # np.dtype is falsy: compare with None
        self._dtype = _numeric_dtype(self._read_raw(0).dtype if dtype is None else dtype, self.description)

    @property
    def num_frames(self) -> int:
        return self._num

    def _read_raw(self, i: int) -> np.ndarray:
        if self._time_axis is None:
            return np.asarray(self._data[(slice(None),) * 2])
        key = (slice(None),) * self._time_axis + (i,)
        return np.asarray(self._data[key])

    def _release(self) -> None:
        self._data = None


class ListSource(FrameSource):
    """An in-memory list of 2-D (H, W) or 3-D (H, W, C) frames of one shape."""

    def __init__(self, frames: Sequence[Any], **kw: Any) -> None:
        super().__init__(**kw)
        self._frames = [np.asarray(f) for f in frames]
        self.description = f"list of {_plural(len(self._frames), 'frame')}"
        if not self._frames:
            raise ValueError("cannot open an empty list of frames")
        first = self._frames[0]
        for n, f in enumerate(self._frames):
            if f.ndim not in (2, 3):
                raise ValueError(f"frame {n} of the list must be (H, W) or (H, W, C), got shape {f.shape}")
            if f.shape != first.shape or f.dtype != first.dtype:
                raise ValueError(f"frame {n} of the list has shape {f.shape} {f.dtype}, "
                                 f"but frame 0 has {first.shape} {first.dtype}")
        self._frame_shape = first.shape
        _check_geometry(len(self._frames), first.shape, self.description)
        self._dtype = _numeric_dtype(first.dtype, self.description)

    @property
    def num_frames(self) -> int:
        return len(self._frames)

    def _read_raw(self, i: int) -> np.ndarray:
        return self._frames[i]


class StreamSource(FrameSource):
    """Frames pushed one by one (camera, generator); the length grows.

    Only the last ``max_frames_kept`` raw frames are kept (``None`` keeps
    all); reading an older one raises :class:`FrameEvictedError`.
    """

    growing = True

    def __init__(self, max_frames_kept: int | None = 64, *, description: str = "stream", **kw: Any) -> None:
        super().__init__(**kw)
        if max_frames_kept is not None and max_frames_kept < 1:
            raise ValueError(f"max_frames_kept must be at least 1, got {max_frames_kept}")
        self.max_frames_kept = max_frames_kept
        self.description = description
        self._frames: collections.deque[np.ndarray] = collections.deque(maxlen=max_frames_kept)
        self._count = 0

    @property
    def num_frames(self) -> int:
        return self._count

    @property
    def frame_shape(self) -> tuple[int, ...]:
        if self._count == 0:
            raise ValueError(f"{self.description} has no frames yet")
        return self._frame_shape

    @property
    def first_kept(self) -> int:
        """Index of the oldest frame still kept."""
        return self._count - len(self._frames)

    def append(self, frame: Any) -> int:
        """Add a frame (copied); returns its index."""
        arr = np.array(frame, copy=True)
        with self._lock:
            if self._count == 0:
                if arr.ndim not in (2, 3):
                    raise ValueError(f"stream frames must be (H, W) or (H, W, C), got shape {arr.shape}")
                _check_geometry(1, arr.shape, self.description)
                self._dtype = _numeric_dtype(arr.dtype, self.description)
                self._frame_shape = arr.shape
            elif arr.shape != self._frame_shape or arr.dtype != self._dtype:
                raise ValueError(f"frame {self._count} has shape {arr.shape} {arr.dtype}, "
                                 f"but the stream's frames are {self._frame_shape} {self._dtype}")
            self._frames.append(arr)
            self._count += 1
            return self._count - 1

    def _read_raw(self, i: int) -> np.ndarray:
        first = self.first_kept
        if i < first:
            raise FrameEvictedError(
                f"frame {i} is no longer available: {self.description} keeps only the last "
                f"{self.max_frames_kept} frames (now {first} to {self._count - 1})")
        return self._frames[i - first]

    def _kept_range(self) -> tuple[int, int]:
        return self.first_kept, len(self._frames)

    def _release(self) -> None:
        self._frames.clear()
