"""From a napari Image layer to the frames a session tracks: axes, channels, working size, memory.

Kept free of Qt so that it can be checked on its own. The array handed to the core stays lazy:
numpy views, dask and zarr arrays are sliced, never loaded whole (the core reads one frame at a time).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

AXES = ("T×Y×X", "T×Y×X×C", "C×T×Y×X", "Z×Y×X (slices as frames)")
_FLOAT_RGB_BYTES = 12  # one float32 RGB pixel, as the core prepares a frame
_FRAMES_IN_FLIGHT = 4  # the frame being read, the prefetched ones, the one being encoded


class ImageError(ValueError):
    """The layer cannot be tracked as chosen (the message says why and what to do)."""


def guess_axes(ndim: int, rgb: bool) -> str:
    """The layout a layer most likely has: an RGB(A) stack is T×Y×X×C, a 4-D one C×T×Y×X."""
    if rgb:
        return AXES[1]
    return AXES[2] if ndim == 4 else AXES[0]


def parse_channels(text: str) -> tuple[int, ...] | None:
    """'0' or '0, 2' -> channel indices (1 to 3, shown as grey or RGB); '' -> the core's default."""
    text = text.strip()
    if not text:
        return None
    try:
        chans = tuple(int(c) for c in text.replace(";", ",").split(",") if c.strip())
    except ValueError:
        raise ImageError(f"channels must be integers separated by commas, got {text!r}") from None
    if not 1 <= len(chans) <= 3 or min(chans) < 0:
        raise ImageError(f"pick 1 to 3 channels (0-based), got {text!r}")
    return chans


@dataclass
class Frames:
    """What the session opens: ``data`` (T, H, W[, C]) lazy, and how it sits on the layer's grid."""

    data: Any
    channels: tuple[int, ...] | None
    bin: int  # working size: every bin-th pixel of the layer
    scale: tuple[float, float, float]  # (t, y, x) world scale of the session's pixels
    translate: tuple[float, float, float]

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.data.shape[:3])


def layer_frames(layer: Any, axes: str, channels: tuple[int, ...] | None = None, bin: int = 1) -> Frames:
    """The frames of an Image layer laid out as ``axes``; ``bin`` > 1 tracks a smaller working size."""
    if layer is None:
        raise ImageError("no image layer: open a time-lapse (File > Open, or File > Open Sample > SAM 2 tracker)")
    data = layer.data
    if getattr(layer, "multiscale", False):
        data = data[0]  # the full-resolution level, still lazy
    ndim = len(data.shape)
    name = f"layer '{layer.name}' of shape {tuple(data.shape)}"
    if axes not in AXES:
        raise ImageError(f"unknown axes {axes!r}; choose one of {', '.join(AXES)}")
    need = {AXES[0]: 3, AXES[1]: 4, AXES[2]: 4, AXES[3]: 3}[axes]
    if ndim == 2 or (ndim == 3 and getattr(layer, "rgb", False)):
        raise ImageError(f"{name} is a single image with no time axis: tracking needs a time-lapse "
                         "(T×Y×X) or a volume whose slices are taken as frames")
    if ndim != need:
        raise ImageError(f"{name} has {ndim} axes but {axes} needs {need}: pick the layout it has")
    if axes == AXES[2]:  # C×T×Y×X -> T×Y×X×C, a view (numpy) or a lazy transpose (dask, zarr via dask)
        data = _moveaxis(data, 0, -1)
    if channels is not None:
        nchan = data.shape[-1] if len(data.shape) == 4 else 1
        bad = [c for c in channels if c >= nchan]
        if bad:
            raise ImageError(f"{name} has {nchan} channel(s); channel {bad[0]} does not exist")
        if len(data.shape) == 3:
            channels = None  # one channel: nothing to pick
    if not isinstance(bin, int) or bin < 1:
        raise ImageError(f"working size divisor must be a whole number >= 1, got {bin!r}")
    if bin > 1:
        data = data[:, ::bin, ::bin]
    if min(data.shape[1:3]) < 8:
        raise ImageError(f"{name} gives frames of {data.shape[1]}×{data.shape[2]} pixels at 1/{bin}: too small")
    first = 1 if axes == AXES[2] else 0  # the layer's (t, y, x) axes
    scale = tuple(float(v) for v in layer.scale[first:first + 3])
    translate = tuple(float(v) for v in layer.translate[first:first + 3])
    scale = (scale[0], scale[1] * bin, scale[2] * bin)  # pixel j of the working grid is pixel j*bin
    return Frames(data, channels, bin, scale, translate)


def _moveaxis(data: Any, src: int, dst: int) -> Any:
    if isinstance(data, np.ndarray):
        return np.moveaxis(data, src, dst)
    import dask.array as da

    arr = data if isinstance(data, da.Array) else da.from_array(data, chunks=(1,) + tuple(data.shape[1:]))
    return da.moveaxis(arr, src, dst)


def memory_needed(shape: tuple[int, ...]) -> int:
    """Bytes a session on frames of ``shape`` (T, H, W[, C]) needs beyond the model: frames prepared
    for the encoder and the (T, H, W) uint16 label stack the results layer holds."""
    t, h, w = (int(s) for s in shape[:3])
    return _FRAMES_IN_FLIGHT * h * w * _FLOAT_RGB_BYTES + t * h * w * 2


def available_memory() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


def check_memory(frames: Frames, available: int | None = None) -> None:
    """Refuse a working size that would exhaust memory, naming the divisor that fits."""
    available = available_memory() if available is None else available
    need = memory_needed(frames.shape)
    budget = available // 2  # leave room for napari, the model and the image layer itself
    if need <= budget:
        return
    factor = frames.bin * max(2, math.ceil(math.sqrt(need / max(budget, 1))))
    t, h, w = frames.shape
    raise ImageError(
        f"{t} frames of {h}×{w} pixels need about {need / 2**30:.1f} GiB but {available / 2**30:.1f} GiB is free: "
        f"set 'working size' to 1/{factor} or lower (the model works at 1024 pixels or fewer anyway)"
    )
