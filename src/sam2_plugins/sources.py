"""Frame sources: videos, image folders, TIFF stacks, arrays and live streams.

Every source is read lazily, one frame at a time. ``read_raw(i)`` gives the
raw pixels, (H, W) or (H, W, C); ``read(i)`` gives model-ready float32
(H, W, 3) in [0, 1] through the source's :class:`IntensityNormalizer`, which
is fitted once per source. :func:`open_source` picks the right source for a
numpy array, a lazy array-like, a list of frames, or a path.
"""

from __future__ import annotations

import bisect
import collections
import itertools
import operator
import os
import re
import threading
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .intensity import IntensityNormalizer, fit_normalizer, select_channels

__all__ = [
    "FrameSource", "ArraySource", "ListSource", "ImageFilesSource", "TiffSource",
    "VideoSource", "StreamSource", "FrameEvictedError", "open_source", "IMAGE_SUFFIXES",
]

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


class ImageFilesSource(FrameSource):
    """One image file per frame (jpg, png, tif, bmp); all the same size."""

    def __init__(self, paths: Sequence[str | os.PathLike], *, description: str | None = None,
                 **kw: Any) -> None:
        super().__init__(**kw)
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise ValueError("no image files given")
        default = f"image {self.paths[0]}" if len(self.paths) == 1 else f"{len(self.paths)} images"
        self.description = description or default
        headers = [_image_header(p) for p in self.paths]  # (H, W, C, dtype)
        h, w, _, dtype = headers[0]
        for p, (hh, ww, _, dt) in zip(self.paths, headers):
            if (hh, ww) != (h, w):
                raise ValueError(f"image {p} is {ww}x{hh} but {self.paths[0].name} is {w}x{h}; "
                                 "all frames must have the same size")
            if dt != dtype:
                raise ValueError(f"image {p} has dtype {dt} but {self.paths[0].name} has {dtype}")
        chans = {c for _, _, c, _ in headers}
        c = max(chans) if chans <= {1, 3} and dtype == np.uint8 else headers[0][2]
        self._frame_shape = (h, w) if c == 1 else (h, w, c)
        _check_geometry(len(self.paths), self._frame_shape, self.description)
        self._dtype = _numeric_dtype(dtype, self.description)

    @property
    def num_frames(self) -> int:
        return len(self.paths)

    def _read_raw(self, i: int) -> np.ndarray:
        arr = _load_image(self.paths[i])
        if arr.ndim == 2 and len(self._frame_shape) == 3 and self._frame_shape[2] == 3:
            arr = np.repeat(arr[:, :, None], 3, axis=2)  # grey among colour jpgs
        if arr.shape != self._frame_shape:
            raise ValueError(
                f"image {self.paths[i]} has shape {arr.shape}, expected {self._frame_shape} like the first")
        return arr


class TiffSource(FrameSource):
    """A multi-page TIFF or OME/ImageJ hyperstack, read plane by plane.

    With axes metadata, T (else Z) is time and C (else S) is channels; any
    other axis is read at index 0 (with a warning). Without it, the stack is
    (T, H, W) or (T, H, W, C) by shape.
    """

    def __init__(self, path: str | os.PathLike, **kw: Any) -> None:
        import tifffile

        super().__init__(**kw)
        self.path = Path(path)
        self.description = f"TIFF {self.path}"
        try:
            self._tif = tifffile.TiffFile(self.path)
            self._series = self._tif.series[0]
        except Exception as exc:
            raise ValueError(f"{self.path} is not a readable TIFF file: {exc}") from exc
        try:
            self._setup(tifffile)
        except Exception:
            self._tif.close()
            raise

    def _setup(self, tifffile: Any) -> None:
        self._shape = shape = tuple(int(s) for s in self._series.shape)
        self._layout = t, c, y, x = _tiff_layout(self._series.axes, shape, self.description)
        self._num = shape[t] if t is not None else 1
        self._frame_shape = (shape[y], shape[x]) + ((shape[c],) if c is not None else ())
        _check_geometry(self._num, self._frame_shape, self.description)
        self._dtype = _numeric_dtype(self._series.dtype, self.description)
        self._mm = None  # a memmap when the data are contiguous and uncompressed
        try:
            mm = tifffile.memmap(self.path, mode="r")
            self._mm = mm if tuple(mm.shape) == shape else None
        except Exception:
            pass

    @property
    def num_frames(self) -> int:
        return self._num

    def _read_raw(self, i: int) -> np.ndarray:
        t, c, y, x = self._layout
        key: list[Any] = [slice(None) if ax in (c, y, x) else 0 for ax in range(len(self._shape))]
        if t is not None:
            key[t] = i
        block = self._mm[tuple(key)] if self._mm is not None else self._read_pages(key)
        kept = sorted(a for a in (c, y, x) if a is not None)  # axes left in block
        order = [kept.index(y), kept.index(x)] + ([kept.index(c)] if c is not None else [])
        return np.asarray(block).transpose(order)

    def _read_pages(self, key: list[Any]) -> np.ndarray:
        """``series[key]`` decoding only the pages it touches."""
        page_shape = tuple(self._series.pages[0].shape)
        lead = self._shape[:len(self._shape) - len(page_shape)]  # axes across pages
        ranges = [range(s) if isinstance(k, slice) else [k] for k, s in zip(key, lead)]
        pages = [int(np.ravel_multi_index(pos, lead)) if lead else 0 for pos in itertools.product(*ranges)]
        planes = np.asarray(self._series.asarray(key=pages)).reshape((len(pages),) + page_shape)
        kept = [len(r) for r, k in zip(ranges, key) if isinstance(k, slice)]
        return planes.reshape(kept + list(page_shape))[(slice(None),) * len(kept) + tuple(key[len(lead):])]

    def _release(self) -> None:
        self._mm = None
        self._tif.close()


class VideoSource(FrameSource):
    """A video file (mp4, mov, avi, webm, mkv, ...) decoded by PyAV as RGB uint8.

    Random access seeks to the keyframe before the frame and decodes
    forward; the last decoded frames are cached so that forward and
    backward sweeps do not decode the same stretch again and again.
    """

    def __init__(self, path: str | os.PathLike, *, cache_bytes: int = 256 << 20, **kw: Any) -> None:
        super().__init__(**kw)
        self.path = Path(path)
        self.description = f"video {self.path}"
        self._container = self._open()
        try:
            self._setup(cache_bytes)
        except Exception:
            self._container.close()
            raise

    def _setup(self, cache_bytes: int) -> None:
        self._decoder, self._next = self._container.decode(self._stream), 0  # next frame it yields
        self._pts: list[int] | None = None  # frame order -> timestamp, once indexed
        self._pos: dict[int, int] | None = None  # timestamp -> frame index
        self._keys: list[int] = []  # indices of keyframes
        self._cache: collections.OrderedDict[int, np.ndarray] = collections.OrderedDict()
        self._cache_size = 4
        self._num = int(self._stream.frames or 0)
        if self._num <= 0:  # the container does not say: count packets
            self._num = self._build_index()
        _check_geometry(self._num, (1, 1), self.description)
        first = self._read_raw(0)  # (H, W, 3); proves the stream decodes
        self._frame_shape, self._dtype = first.shape, first.dtype
        _check_geometry(self._num, first.shape, self.description)
        self._cache_size = int(max(4, min(64, cache_bytes // first.nbytes)))

    @property
    def num_frames(self) -> int:
        return self._num

    def _open(self) -> Any:
        import av

        try:
            container = av.open(str(self.path))
        except Exception as exc:
            raise ValueError(f"{self.path} is not a readable video file: {exc}") from exc
        if not container.streams.video:
            container.close()
            raise ValueError(f"{self.path} has no video stream (an empty video, or audio only)")
        self._stream = container.streams.video[0]
        self._stream.thread_type = "AUTO"
        return container

    def _build_index(self) -> int:
        """Demux (no decoding) once to learn every frame's timestamp; returns the count."""
        import av

        stamps, keys, usable = [], set(), True
        try:
            with av.open(str(self.path)) as container:
                for packet in container.demux(container.streams.video[0]):
                    if packet.size == 0:
                        continue
                    stamp = packet.pts if packet.pts is not None else packet.dts
                    usable &= stamp is not None
                    stamps.append(stamp)
                    if packet.is_keyframe:
                        keys.add(stamp)
        except Exception as exc:
            raise ValueError(f"{self.path} is not a readable video file: {exc}") from exc
        self._pts = []  # indexed; stays empty if frames can only be counted from the start
        if usable and len(set(stamps)) == len(stamps):
            self._pts = sorted(stamps)
            self._pos = {t: k for k, t in enumerate(self._pts)}
            self._keys = [k for k, t in enumerate(self._pts) if t in keys]
        return len(stamps)

    def _read_raw(self, i: int) -> np.ndarray:
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        if not self._can_walk_to(i):
            self._seek(i)
        return self._walk_to(i)

    def _can_walk_to(self, i: int) -> bool:
        if self._decoder is None or self._next is None or i < self._next:
            return False
        if not self._pos:  # not indexed yet, or seeking is impossible
            return self._pts is not None or i - self._next <= 64
        key = self._keys[max(0, bisect.bisect_right(self._keys, i) - 1)] if self._keys else 0
        return key <= self._next  # no keyframe to jump to in between

    def _seek(self, i: int) -> None:
        if self._pts is None:
            self._build_index()
        if not self._pos or i >= len(self._pts):
            return self._restart()
        self._container.seek(self._pts[i], backward=True, any_frame=False, stream=self._stream)
        self._decoder, self._next = self._container.decode(self._stream), None

    def _restart(self) -> None:
        self._container.close()
        self._container = self._open()
        self._decoder, self._next = self._container.decode(self._stream), 0

    def _walk_to(self, i: int) -> np.ndarray:
        """Decode forward until frame ``i``, caching the last frames on the way."""
        while True:
            try:
                frame = next(self._decoder, None)
            except Exception as exc:
                self._decoder = None
                raise ValueError(f"could not decode frame {i} of {self.path}: {exc}") from exc
            if frame is None:
                self._decoder = None
                raise ValueError(f"could not decode frame {i} of {self.path}: the video ended early")
            k = self._pos.get(frame.pts) if self._pos else None
            if self._next is None and (k is None or k > i):  # cannot place it, or overshot
                self._restart()
                continue
            k = self._next if k is None else k
            self._next = k + 1
            if k > i - self._cache_size:
                self._remember(k, frame.to_ndarray(format="rgb24"))
            if k >= i:
                if i not in self._cache:
                    raise ValueError(f"could not decode frame {i} of {self.path}: no frame has its timestamp")
                return self._cache[i]

    def _remember(self, k: int, rgb: np.ndarray) -> None:
        self._cache[k] = rgb
        self._cache.move_to_end(k)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _release(self) -> None:
        self._cache.clear()
        self._decoder = None
        self._container.close()


class StreamSource(FrameSource):
    """Frames pushed one by one (camera, generator); the length grows.

    Only the last ``max_frames_kept`` raw frames are kept (``None`` keeps
    all); reading an older one raises :class:`FrameEvictedError`.
    """

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


# ---------------------------------------------------------------------------
def open_source(obj: Any, *, normalizer: IntensityNormalizer | None = None,
                channels: Sequence[int] | None = None, time_axis: int = 0) -> FrameSource:
    """Open frames from an array, array-like, list of frames, or a path.

    Paths may name a video file, a folder of images, a (multi-page) TIFF,
    a single image file, or a ``.npy`` file. ``channels`` picks the input
    channels shown as RGB; ``normalizer`` fixes the intensity mapping
    (otherwise fitted on first read).
    """
    if normalizer is not None and channels is not None and normalizer.channels != tuple(channels):
        raise ValueError(
            f"channels={tuple(channels)} conflicts with the normalizer's channels={normalizer.channels}")
    source = _make_source(obj, time_axis)
    if channels is not None:
        source._channel_select = tuple(int(c) for c in channels)
        source._normalizer = None  # refit for these channels (unless given below)
        if source.num_frames > 0:
            select_channels(np.zeros((1, 1, source.channels), np.uint8), source._channel_select)
    if normalizer is not None:
        source.normalizer = normalizer
    return source


def _make_source(obj: Any, time_axis: int) -> FrameSource:
    if isinstance(obj, FrameSource):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        return _open_path(Path(obj), time_axis)
    if type(obj).__module__.startswith("torch") and hasattr(obj, "detach"):
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        return ArraySource(obj, time_axis=time_axis)
    if isinstance(obj, (list, tuple)):
        if obj and all(isinstance(p, (str, os.PathLike)) for p in obj):
            return ImageFilesSource(obj)
        return ListSource(obj)
    if _is_array_like(obj):
        return ArraySource(obj, time_axis=time_axis)
    if hasattr(obj, "__array_interface__") or type(obj).__module__.startswith("PIL"):
        return ListSource([np.asarray(obj)])  # a single image, e.g. a PIL image
    raise TypeError(
        f"cannot read frames from a {type(obj).__name__}; expected an array, a list of frames or a path")


def _open_path(path: Path, time_axis: int) -> FrameSource:
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if path.is_dir():
        files = sorted((p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")
                        and p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)
        if not files:
            raise ValueError(f"folder {path} contains no image files ({', '.join(IMAGE_SUFFIXES)})")
        return ImageFilesSource(files, description=f"folder {path} ({len(files)} images)")
    suffix = path.suffix.lower()
    if suffix in TIFF_SUFFIXES:
        return TiffSource(path)
    if suffix in IMAGE_SUFFIXES:
        return ImageFilesSource([path])
    if suffix == ".npy":
        try:
            data = np.load(path, mmap_mode="r")
        except Exception as exc:
            raise ValueError(f"{path} is not a readable .npy file: {exc}") from exc
        return ArraySource(data, time_axis=time_axis, description=f"{path.name} of shape {data.shape}")
    return VideoSource(path)


def _is_array_like(obj: Any) -> bool:
    """Has what lazy reading needs: dask, zarr, h5py, memmaps and the like."""
    has = lambda name: hasattr(obj, name)  # noqa: E731
    return has("shape") and has("__getitem__") and (has("dtype") or has("ndim"))


def _natural_key(path: Path) -> list[Any]:
    """Sort key so that frame2.png < frame10.png."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name.lower())]


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


# -- image files ------------------------------------------------------------
# PIL mode -> (mode to convert to, channels, dtype); any other mode becomes RGB uint8
_PIL_MODES = {
    "1": ("L", 1, np.uint8), "L": ("L", 1, np.uint8), "LA": ("L", 1, np.uint8),
    "I;16": ("I;16", 1, np.uint16), "I;16B": ("I;16", 1, np.uint16), "I;16L": ("I;16", 1, np.uint16),
    "I": ("I", 1, np.int32), "F": ("F", 1, np.float32),
}


def _image_header(path: Path) -> tuple[int, int, int, np.dtype]:
    """(H, W, C, dtype) of an image file, reading as little as possible."""
    if path.suffix.lower() in TIFF_SUFFIXES:
        with TiffSource(path) as tif:
            return tif.height, tif.width, tif.channels, tif.dtype
    from PIL import Image

    try:
        with Image.open(path) as im:
            _, c, dtype = _PIL_MODES.get(im.mode, ("RGB", 3, np.uint8))
            return im.size[1], im.size[0], c, np.dtype(dtype)
    except Exception as exc:
        raise ValueError(f"{path} is not a readable image file: {exc}") from exc


def _load_image(path: Path) -> np.ndarray:
    """Pixels of an image file: (H, W) or (H, W, C); the first frame of a TIFF."""
    if path.suffix.lower() in TIFF_SUFFIXES:
        with TiffSource(path) as tif:
            return np.array(tif.read_raw(0))
    from PIL import Image

    try:
        with Image.open(path) as im:
            target = _PIL_MODES.get(im.mode, ("RGB",))[0]
            return np.asarray(im if im.mode == target else im.convert(target))
    except Exception as exc:
        raise ValueError(f"{path} is not a readable image file: {exc}") from exc


# -- TIFF layout --------------------------------------------------------------
def _tiff_layout(axes: str, shape: tuple[int, ...], what: str) -> tuple[int | None, int | None, int, int]:
    """Positions of (time, channel, Y, X) in a TIFF series; None if absent."""
    n = len(shape)
    if n < 2 or len(axes) != n:
        raise ValueError(f"{what} has an unsupported image layout (axes {axes!r}, shape {shape})")
    if not any(a in axes for a in "TZCS") and n <= 4:  # no axes info: go by shape
        if n == 2:
            return None, None, 0, 1
        if n == 3:
            return 0, None, 1, 2
        if shape[3] <= 16:
            return 0, 3, 1, 2
        if shape[1] <= 16:
            return 0, 1, 2, 3
        raise ValueError(f"{what}: cannot tell channels from shape {shape}; save it with axes metadata")
    if "Y" not in axes or "X" not in axes:
        raise ValueError(f"{what} has no Y/X axes (axes {axes!r})")
    y, x = axes.rindex("Y"), axes.rindex("X")
    c = axes.index("C") if "C" in axes else (axes.index("S") if "S" in axes else None)
    t = next((axes.index(a) for a in "TZ" if a in axes), None)
    if t is None:
        t = next((k for k, a in enumerate(axes) if a in "QI" and k not in (y, x, c)), None)
    dropped = [f"{a}={shape[k]}" for k, a in enumerate(axes) if k not in (t, c, y, x) and shape[k] > 1]
    if dropped:
        warnings.warn(f"{what}: only the first index of axes {', '.join(dropped)} is used", stacklevel=3)
    return t, c, y, x
