"""Streaming: a session fed frame by frame (camera, generator) with memory bounded for endless streams.

    stream = model.open_stream()
    first = stream.push(frame0)
    stream.add_points(first.frame_index, obj_id=1, points=[[120, 80]], labels=[1])
    for frame in camera:
        result = stream.push(frame)  # masks of every object on the new frame

Only the last ``keep_frames`` frames, their results and the memories SAM 2 can still read
are kept. With at least 16 frames pushed, results equal an offline session's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .results import FrameResult
from .session import VideoSession
from .sources import StreamSource

# A stream has no known end: for SAM 2's pointer window it counts as a long video.
_ENDLESS = 1 << 30


class StreamSession(VideoSession):
    """A :class:`VideoSession` whose frames arrive one at a time and are tracked forward as they come."""

    def __init__(self, model, *, keep_frames: int = 64, normalizer=None, channels=None, **options: Any) -> None:
        source = StreamSource(max_frames_kept=keep_frames, normalizer=normalizer, channels=channels)
        self.keep_frames = keep_frames
        super().__init__(model, source, **options)
        self.tracker.num_frames = lambda: _ENDLESS

    def push(self, frame: np.ndarray) -> FrameResult:
        """Add the next frame; once objects have prompts, track them onto it and return its masks."""
        index = self.source.append(frame)
        if self.height is None:
            self.height, self.width = self.source.height, self.source.width
            self.results.height, self.results.width = self.height, self.width
        if not self.tracks:
            return FrameResult(index, [], np.zeros((0, self.height, self.width), np.float32))
        self._consolidate_prompts()
        result = self._track_frame(index, reverse=False)
        self._forget_before(index)
        return result

    def _forget_before(self, index: int) -> None:
        """Drop memories SAM 2 can no longer read and results older than ``keep_frames``."""
        cfg = self.model.config
        reach = max(cfg.num_maskmem * cfg.memory_temporal_stride_for_eval, cfg.max_obj_ptrs_in_encoder) + 1
        for track in self.tracks.values():
            for f in [f for f in track.non_cond if f < index - reach]:
                del track.non_cond[f]
            for f in [f for f in track.tracked if f < index - self.keep_frames]:
                del track.tracked[f]
        for f in [f for f in self.results.frames() if f < index - self.keep_frames]:
            for oid in self.results.object_ids_on(f):
                self.results.drop_frame(f, oid)
