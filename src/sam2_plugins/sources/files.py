"""Image files on disk: one image per frame, and multi-page TIFF / OME / ImageJ stacks."""

from __future__ import annotations

import itertools
import os
import re
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .base import TIFF_SUFFIXES, FrameSource, _check_geometry, _numeric_dtype


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


def _natural_key(path: Path) -> list[Any]:
    """Sort key so that frame2.png < frame10.png."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name.lower())]


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
