"""Frame sources: videos, image folders, TIFF stacks, arrays and live streams.

Every source is read lazily, one frame at a time. ``read_raw(i)`` gives the
raw pixels, (H, W) or (H, W, C); ``read(i)`` gives model-ready float32
(H, W, 3) in [0, 1] through the source's :class:`IntensityNormalizer`, which
is fitted once per source. :func:`open_source` picks the right source for a
numpy array, a lazy array-like, a list of frames, or a path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..intensity import IntensityNormalizer, select_channels
from .arrays import ArraySource, ListSource, StreamSource
from .base import IMAGE_SUFFIXES, TIFF_SUFFIXES, FrameEvictedError, FrameSource
from .files import ImageFilesSource, TiffSource, _natural_key
from .video import VideoSource

# private helpers, still importable from their old place, ``sam2_plugins.sources``
from .base import _FIT_SAMPLE_FRAMES as _FIT_SAMPLE_FRAMES
from .base import _check_geometry as _check_geometry
from .base import _numeric_dtype as _numeric_dtype
from .base import _plural as _plural
from .files import _PIL_MODES as _PIL_MODES
from .files import _image_header as _image_header
from .files import _load_image as _load_image
from .files import _tiff_layout as _tiff_layout

__all__ = [
    "FrameSource", "ArraySource", "ListSource", "ImageFilesSource", "TiffSource",
    "VideoSource", "StreamSource", "FrameEvictedError", "open_source", "IMAGE_SUFFIXES",
]


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
