"""Live streams: frames pushed one at a time (camera, generator), tracked as they come.

    stream = model.open_stream()
    first = stream.push(frame0)
    stream.add_points(first.frame_index, obj_id=1, points=[[120, 80]], labels=[1])
    for frame in camera:
        result = stream.push(frame)  # masks of every object on the new frame

A stream is a :class:`~sam2_plugins.sources.StreamSource` (a source whose length grows) under
an ordinary :class:`VideoSession`. Only the last ``keep_frames`` frames and their results are
kept, and tracked memories only as far back as SAM 2 reads them, so memory stays bounded
however long the stream runs. With at least 16 frames pushed, results equal an offline
session's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..sources import StreamSource
from .results import FrameResult
from .session import VideoSession

if TYPE_CHECKING:
    from ..engine import Sam2


class StreamSession:
    """Push frames; every object with a prompt is tracked forward onto each new frame.

    Prompts, removal and read-back are the session's (``add_points``, ``add_box``, ``add_mask``,
    ``remove_object``, ``labels`` ...): any attribute not defined here is ``self.session``'s.
    """

    def __init__(self, model: "Sam2", *, keep_frames: int = 64, normalizer=None, channels=None,
                 **options: Any) -> None:
        self.keep_frames = keep_frames
        self.source = StreamSource(max_frames_kept=keep_frames, normalizer=normalizer, channels=channels)
        self.session = VideoSession(model, self.source, **options)

    def push(self, frame: np.ndarray) -> FrameResult:
        """Add the next frame; once objects have prompts, track them onto it and return its masks."""
        index = self.source.append(frame)
        session = self.session
        if not session.tracks:
            return FrameResult(index, [], np.zeros((0, session.height, session.width), np.float32))
        (result,) = session.propagate(index, max_frames=0)
        session.forget_before(index, keep_results=self.keep_frames)
        return result

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> "StreamSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        if name == "session":  # not yet set: during __init__
            raise AttributeError(name)
        return getattr(self.session, name)
