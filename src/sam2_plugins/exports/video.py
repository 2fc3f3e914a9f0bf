"""Overlay videos: frames with coloured, outlined objects, encoded as H.264 MP4 via PyAV."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterable, Union

import numpy as np

from ._atomic import ExportCancelled, atomic_file, is_cancelled

__all__ = ["object_colors", "overlay_labels", "to_rgb_uint8", "write_overlay_video"]

FrameSource = Union[Callable[[int], Any], Iterable[Any], None]
LabelSource = Union[Any, Callable[[int], Any]]
ProgressFn = Callable[[int, int], Any]

_GOLDEN = 0.618033988749895


def object_colors(ids: Any) -> np.ndarray:
    """(N, 3) uint8 RGB colours for object ids: fixed per id, bright and well spread.

    Id 0 (background) is black.  The same id always gets the same colour, in every
    export and every session.
    """
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    hue = (ids * _GOLDEN + 0.11) % 1.0
    h6 = hue * 6.0
    rgb = np.clip(np.stack([np.abs(h6 - 3) - 1, 2 - np.abs(h6 - 2), 2 - np.abs(h6 - 4)], -1), 0, 1)
    rgb = 40 + rgb * 215  # value 1, saturation ~0.84: vivid but never pure black
    rgb[ids == 0] = 0
    return np.rint(rgb).astype(np.uint8)


def to_rgb_uint8(image: Any) -> np.ndarray:
    """(H, W, 3) uint8 from a uint8 or float-in-[0, 1] image: greyscale (H, W), (H, W, 1), RGB or RGBA."""
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=-1)
    if a.ndim != 3 or a.shape[-1] not in (3, 4):
        raise ValueError(f"a frame must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {a.shape}")
    a = a[..., :3]
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if a.dtype == bool:
        return a.astype(np.uint8) * np.uint8(255)
    if a.dtype.kind == "f":
        return np.clip(np.rint(np.nan_to_num(a, nan=0.0) * 255.0), 0, 255).astype(np.uint8)
    raise TypeError(
        f"frames must be uint8 or float in [0, 1], got {a.dtype}; normalise raw frames first "
        "(e.g. session.source.read(i) is display-ready)"
    )


def frame_and_labels(image: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 frame and its (H, W) label image, checked to be the same size."""
    rgb = to_rgb_uint8(image)
    lab = np.asarray(labels)
    if lab.shape != rgb.shape[:2]:
        raise ValueError(f"labels {lab.shape} and frame {rgb.shape[:2]} differ in size")
    return rgb, lab


def _edges(lab: np.ndarray) -> np.ndarray:
    """Object pixels with a 4-neighbour of another id (including background)."""
    edge = np.zeros(lab.shape, bool)
    dv = lab[1:] != lab[:-1]
    dh = lab[:, 1:] != lab[:, :-1]
    edge[1:] |= dv
    edge[:-1] |= dv
    edge[:, 1:] |= dh
    edge[:, :-1] |= dh
    return edge & (lab != 0)


def overlay_labels(image: Any, labels: Any, *, alpha: float = 0.5, contours: bool = True) -> np.ndarray:
    """Blend object colours (:func:`object_colors`) over `image`; returns (H, W, 3) uint8.

    Inside an object: ``(1 - alpha) * image + alpha * colour``; with `contours`, the
    object's outline (1 pixel, inner side) is drawn in its opaque colour.
    """
    rgb, lab = frame_and_labels(image, labels)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    fg = lab != 0
    if not fg.any():
        return rgb
    ids, inv = np.unique(lab, return_inverse=True)
    col = object_colors(ids)[inv.reshape(lab.shape)]
    out = rgb.astype(np.float32)
    out[fg] = (1.0 - alpha) * out[fg] + alpha * col[fg].astype(np.float32)
    out = np.rint(out).astype(np.uint8)
    if contours:
        edge = _edges(lab)
        out[edge] = col[edge]
    return out


def _label_reader(labels: LabelSource, num_frames: int | None) -> tuple[Callable[[int], np.ndarray], int]:
    if callable(labels):
        if num_frames is None:
            raise ValueError("num_frames is required when labels is a callable")
        return (lambda i: np.asarray(labels(i))), int(num_frames)
    if not hasattr(labels, "shape"):
        labels = np.asarray(labels)
    if len(labels.shape) != 3:
        raise ValueError(f"labels must be (T, H, W), got shape {tuple(labels.shape)}")
    total = int(labels.shape[0]) if num_frames is None else min(int(num_frames), int(labels.shape[0]))
    return (lambda i: np.asarray(labels[i])), total


def _frame_reader(frames: FrameSource) -> Callable[[int, tuple[int, int]], np.ndarray]:
    if frames is None:
        return lambda i, hw: np.zeros((*hw, 3), np.uint8)
    if callable(frames):
        return lambda i, hw: frames(i)
    it = iter(frames)

    def nxt(i: int, hw: tuple[int, int]) -> np.ndarray:
        try:
            return next(it)
        except StopIteration:
            raise ValueError(f"frames ran out after {i} frames") from None

    return nxt


def write_overlay_video(
    path: str | os.PathLike,
    frames: FrameSource,
    labels: LabelSource,
    fps: float = 10,
    alpha: float = 0.5,
    *,
    contours: bool = True,
    num_frames: int | None = None,
    crf: int = 18,
    preset: str = "medium",
    progress: ProgressFn | None = None,
    cancel: Any = None,
) -> Path | None:
    """Encode frames with coloured object overlays as an H.264 MP4 (libx264, yuv420p).

    `frames`: a callable ``frames(i)`` or an iterable, giving (H, W[, C]) uint8 or
    float-in-[0, 1] images one at a time (None: black background); `labels`: a
    (T, H, W) array-like, or a callable ``labels(i) -> (H, W)`` with `num_frames`.
    Nothing is held for more than one frame, so long videos stream.  Odd sizes are
    padded (black, bottom/right) to even.  `crf` sets quality (0 lossless ..
    51; 18 is visually lossless).  ``progress(done, total)`` is called after each
    frame; `cancel` (``threading.Event`` or callable) is checked before each frame.
    The file is written atomically: returns `path` when complete, or None when
    cancelled, in which case `path` is left exactly as it was.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    read_labels, total = _label_reader(labels, num_frames)
    if total < 1:
        raise ValueError("no frames to write")
    read_frame = _frame_reader(frames)
    rate = Fraction(fps).limit_denominator(100000)
    try:
        with atomic_file(path) as tmp:
            _encode(tmp, read_frame, read_labels, total, rate, alpha, contours, crf, preset, progress, cancel)
    except ExportCancelled:
        return None
    return Path(path)


def _encode(tmp, read_frame, read_labels, total, rate, alpha, contours, crf, preset, progress, cancel) -> None:
    import av  # PyAV loads FFmpeg: only when a video is written

    container = av.open(os.fspath(tmp), mode="w", format="mp4", options={"movflags": "+faststart"})
    try:
        stream = None
        for i in range(total):
            if is_cancelled(cancel):
                raise ExportCancelled
            lab = read_labels(i)
            img = overlay_labels(read_frame(i, lab.shape), lab, alpha=alpha, contours=contours)
            h, w = img.shape[:2]
            if stream is None:
                size = (h, w)
                stream = container.add_stream("libx264", rate=rate)
                stream.width, stream.height = w + w % 2, h + h % 2
                stream.pix_fmt = "yuv420p"
                stream.codec_context.time_base = 1 / rate
                stream.options = {"crf": str(int(crf)), "preset": preset}
            elif (h, w) != size:
                raise ValueError(f"frame {i} is {h}x{w}, earlier frames were {size[0]}x{size[1]}")
            if h % 2 or w % 2:
                img = np.pad(img, ((0, h % 2), (0, w % 2), (0, 0)))
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts = i
            vf.time_base = 1 / rate
            for packet in stream.encode(vf.reformat(format="yuv420p")):
                container.mux(packet)
            if progress is not None:
                progress(i + 1, total)
        for packet in stream.encode(None):
            container.mux(packet)
    finally:
        container.close()
