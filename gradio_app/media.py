"""Uploads in, frames out: probe a file with PyAV, refuse what breaks the limits, decode it downscaled.

Frames go to a ``.npy`` file in the visitor's own folder and are read back memory-mapped, so a
video is never held in memory whole. An image is a one-frame video.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .limits import Limits


class UploadRefused(ValueError):
    """An upload that is not a readable video or image, or that breaks a limit; the message says which."""


@dataclass(frozen=True)
class Clip:
    """Decoded frames on disk (``frames.npy``, (T, H, W, 3) uint8) and what the page says about them."""

    path: Path
    num_frames: int
    height: int
    width: int
    fps: float
    note: str  # e.g. "downscaled from 1920x1080"

    def frames(self) -> np.ndarray:
        """The frames, memory-mapped (read lazily)."""
        return np.load(self.path, mmap_mode="r")[: self.num_frames]


def _fit(width: int, height: int, max_side: int) -> tuple[int, int]:
    """Even width and height no larger than max_side on the longer side, the aspect kept."""
    scale = min(1.0, max_side / max(width, height))
    w, h = max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2)
    return (w, h) if scale < 1.0 else (width, height)


def decode_upload(src: str | os.PathLike, dest: Path, limits: Limits, name: str = "the file") -> Clip:
    """Probe `src` with PyAV, check it against `limits`, and decode it into ``dest`` (a ``.npy`` path).

    Raises :class:`UploadRefused` before decoding anything when the file is too big, unreadable,
    not a video or image, too long or has too many frames.
    """
    import av

    src = Path(src)
    size_mb = src.stat().st_size / (1 << 20)  # MB as Gradio's max_file_size counts them
    if size_mb > limits.max_upload_mb:
        raise UploadRefused(f"{name} is {size_mb:.1f} MB; the limit is {limits.max_upload_mb:g} MB")
    try:
        container = av.open(os.fspath(src))
    except Exception:
        raise UploadRefused(f"{name} is not a readable video or image") from None
    with container:
        if not container.streams.video:
            raise UploadRefused(f"{name} has no video or image in it")
        stream = container.streams.video[0]
        count = _count_frames(container, stream)
        if count == 0 or not stream.codec_context.width:
            raise UploadRefused(f"{name} is not a readable video or image (no frame could be read)")
        fps = float(stream.average_rate or stream.guessed_rate or 0) or 10.0
        seconds = count / fps if count > 1 else 0.0
        if seconds > limits.max_seconds:
            raise UploadRefused(f"{name} lasts {seconds:.1f} s; the limit is {limits.max_seconds:g} s")
        if count > limits.max_frames:
            raise UploadRefused(f"{name} has {count} frames; the limit is {limits.max_frames}")
        width, height = stream.codec_context.width, stream.codec_context.height
        w, h = _fit(width, height, limits.max_side)
        container.seek(0)
        frames = np.lib.format.open_memmap(dest, mode="w+", dtype=np.uint8, shape=(count, h, w, 3))
        done = 0
        try:
            for frame in container.decode(stream):
                if done == count:
                    break
                frames[done] = frame.reformat(width=w, height=h, format="rgb24").to_ndarray()
                done += 1
        except Exception:
            if done == 0:
                raise UploadRefused(f"{name} is not a readable video or image (its frames do not decode)") from None
        frames.flush()
        del frames
    if done == 0:
        raise UploadRefused(f"{name} is not a readable video or image (no frame decoded)")
    note = f"downscaled from {width}x{height} to {w}x{h}" if (w, h) != (width, height) else f"{w}x{h}"
    return Clip(dest, done, h, w, fps, note)


def _count_frames(container, stream) -> int:
    """Frames in the stream: the container's count, else demuxed packets (no decoding)."""
    if stream.frames:
        return int(stream.frames)
    try:
        return sum(1 for packet in container.demux(stream) if packet.size)
    except Exception:
        return 0
