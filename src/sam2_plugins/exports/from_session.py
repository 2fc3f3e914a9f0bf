"""Thin conveniences: run an exporter on a :class:`~sam2_plugins.session.VideoSession`.

Each reads the session's label stack (``session.labels()``; uint32 when an id
exceeds 65535) and frames, then calls the matching array-based exporter.  Any
object with the same duck-typed attributes (``labels``, ``object_ids``,
``num_frames``, ``source.read``) works.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .ctc import CTCExport, write_ctc
from .images import write_label_stack, write_object_masks
from .tracks import write_tracks_csv
from .video import write_overlay_video

__all__ = [
    "session_labels",
    "export_label_stack_from_session",
    "export_object_masks_from_session",
    "export_overlay_video_from_session",
    "export_ctc_from_session",
    "export_tracks_csv_from_session",
]


def _dtype(session: Any) -> type:
    return np.uint32 if any(int(i) > 0xFFFF for i in session.object_ids) else np.uint16


def session_labels(session: Any, frames: Any = None) -> np.ndarray:
    """(T, H, W) label stack of a session, uint16 (uint32 if an object id exceeds 65535)."""
    return session.labels(frames, dtype=_dtype(session))


def export_label_stack_from_session(session: Any, path: str | os.PathLike, **kwargs: Any) -> Path:
    """:func:`write_label_stack` of the session's labels."""
    return write_label_stack(path, session_labels(session), **kwargs)


def export_object_masks_from_session(session: Any, folder: str | os.PathLike, **kwargs: Any) -> Path:
    """:func:`write_object_masks` for every session object (also those never found)."""
    kwargs.setdefault("object_ids", [i for i in session.object_ids if int(i) > 0])
    return write_object_masks(folder, session_labels(session), **kwargs)


def export_overlay_video_from_session(session: Any, path: str | os.PathLike, **kwargs: Any) -> Path | None:
    """:func:`write_overlay_video` of the session's display frames and labels, one frame at a time."""
    dtype = _dtype(session)
    return write_overlay_video(
        path,
        session.source.read,
        lambda i: session.labels([i], dtype=dtype)[0],
        num_frames=session.num_frames,
        **kwargs,
    )


def export_ctc_from_session(
    session: Any, folder: str | os.PathLike, parents: Mapping[int, int] | None = None, **kwargs: Any
) -> CTCExport:
    """:func:`write_ctc` of the session's labels (`parents`: {child id: mother id})."""
    return write_ctc(folder, session_labels(session), parents, **kwargs)


def export_tracks_csv_from_session(
    session: Any, path: str | os.PathLike, parents: Mapping[int, int] | None = None
) -> Path:
    """:func:`write_tracks_csv` of the session's labels."""
    return write_tracks_csv(path, session_labels(session), parents)
