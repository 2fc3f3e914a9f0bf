"""Video files decoded by PyAV, with keyframe seeking and a small frame cache."""

from __future__ import annotations

import bisect
import collections
import os
from pathlib import Path
from typing import Any

import numpy as np

from .base import FrameSource, _check_geometry


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
