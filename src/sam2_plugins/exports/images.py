"""Label stacks as TIFF (Fiji/ImageJ, napari, Python) and per-object PNG masks."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import tifffile
from PIL import Image

from ._atomic import atomic_file, atomic_folder
from .lineage import DEFAULT_MIN_AREA, as_label_stack, clean_frame

__all__ = ["write_label_stack", "write_object_masks", "object_mask_name", "as_label_stack"]

_UINT = {np.dtype(np.uint8): 0xFF, np.dtype(np.uint16): 0xFFFF, np.dtype(np.uint32): 0xFFFFFFFF}
_MASK_NAME = re.compile(r"obj\d+_t\d+\.png")


def _frame(labels: Any, t: int) -> np.ndarray:
    return np.asarray(labels[t])


def _id_range(labels: Any) -> tuple[int, int]:
    lo, hi = 0, 0
    for t in range(labels.shape[0]):
        f = _frame(labels, t)
        if f.size:
            lo, hi = min(lo, int(f.min())), max(hi, int(f.max()))
    return lo, hi


def write_label_stack(
    path: str | os.PathLike,
    labels: Any,
    *,
    dtype: Any = None,
    compression: str | None = None,
    min_area: int = DEFAULT_MIN_AREA,
) -> Path:
    """Write a (T, H, W) label stack as one multi-page TIFF, atomically; returns the path.

    The data type is uint16, or uint32 when an id exceeds 65535 (or pass `dtype`
    uint8/uint16/uint32; ids that do not fit raise ValueError).  uint8/uint16
    stacks are ImageJ hyperstacks with axes ``TYX`` (Fiji opens them as a
    time series, display range 0..max id; a single frame is stored as ``YX``).
    ImageJ has no 32-bit integer type, so uint32 stacks are plain tifffile
    "shaped" TIFFs whose axes metadata is ``TYX`` (read by tifffile, napari and
    Fiji's Bio-Formats).  `compression` is any tifffile codec name (``"zlib"``
    needs nothing extra); default uncompressed.  Frames are converted one at a time,
    so a memmapped stack is not loaded whole.  Specks are dropped first: pieces of
    an object under `min_area` pixels become background (the rule every export
    shares, see :mod:`~sam2_plugins.exports.lineage`; ``min_area=0`` writes the
    stack unchanged).  Data type and display range come from the ids before that.
    """
    labels = as_label_stack(labels)
    lo, hi = _id_range(labels)
    if lo < 0:
        raise ValueError(f"label ids must be >= 0, found {lo}")
    if dtype is None:
        out = np.dtype(np.uint16) if hi <= 0xFFFF else np.dtype(np.uint32)
    else:
        out = np.dtype(dtype)
        if out not in _UINT:
            raise ValueError(f"dtype must be uint8, uint16 or uint32, got {out}")
    if hi > _UINT.get(out, 0xFFFFFFFF):
        raise ValueError(f"label id {hi} does not fit in {out}")
    imagej = out.itemsize <= 2
    metadata: dict[str, Any] = {"axes": "TYX"}
    if imagej:
        metadata.update(min=0.0, max=float(max(hi, 1)))
    pages = (clean_frame(_frame(labels, t), min_area).astype(out, copy=False) for t in range(labels.shape[0]))
    with atomic_file(path) as tmp:
        tifffile.imwrite(
            tmp, pages, shape=tuple(labels.shape), dtype=out, imagej=imagej,
            metadata=metadata, compression=compression,
        )
    return Path(path)


def object_mask_name(obj_id: int, t: int, num_frames: int | None = None) -> str:
    """File name of one object's mask on one frame: ``obj{ID:03d}_t{T:04d}.png``.

    Fields widen for ids >= 1000 or more than 10000 frames (all names of one
    export use the same frame width, so they sort in time order).
    """
    width = max(4, len(str(max((num_frames or 1) - 1, 0))))
    return f"obj{int(obj_id):03d}_t{int(t):0{width}d}.png"


def write_object_masks(
    folder: str | os.PathLike,
    labels: Any,
    *,
    object_ids: Iterable[int] | None = None,
    skip_empty: bool = False,
    min_area: int = DEFAULT_MIN_AREA,
) -> Path:
    """Write one binary PNG per object and frame into `folder`; returns the folder.

    Layout: a single flat folder of 8-bit greyscale PNGs named
    :func:`object_mask_name` (``obj007_t0012.png`` = object 7 on frame 12),
    pixel value 255 inside the object and 0 elsewhere.  Every object gets a
    file for every frame (empty frames are all-zero) unless `skip_empty`.
    `object_ids` defaults to the ids present in `labels`; ids never present
    get all-zero masks.  Specks are dropped first (pieces under `min_area` pixels,
    the rule every export shares; 0 keeps all), so an object that is only a speck
    on a frame has an empty mask there.  The folder is built aside and swapped in whole, so an
    interrupted export leaves the previous one intact; an existing folder
    holding other files is refused (FileExistsError).
    """
    labels = as_label_stack(labels)
    num_frames = int(labels.shape[0])
    if object_ids is None:
        found: set[int] = set()
        for t in range(num_frames):
            found.update(int(i) for i in np.unique(clean_frame(_frame(labels, t), min_area)))
        ids = sorted(found - {0})
    else:
        ids = sorted({int(i) for i in object_ids})
        if any(i <= 0 for i in ids):
            raise ValueError("object ids must be positive (0 is background)")
    owned = lambda name: bool(_MASK_NAME.fullmatch(name)) or name.startswith(".")  # noqa: E731
    with atomic_folder(folder, owned) as tmp:
        for t in range(num_frames):
            frame = clean_frame(_frame(labels, t), min_area)
            for oid in ids:
                mask = frame == oid
                if skip_empty and not mask.any():
                    continue
                img = Image.fromarray(mask.astype(np.uint8) * np.uint8(255))
                img.save(tmp / object_mask_name(oid, t, num_frames), format="PNG")
    return Path(folder)
