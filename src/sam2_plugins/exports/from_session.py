"""Thin conveniences: run an exporter on a :class:`~sam2_plugins.video.VideoSession`.

Each reads the session's uint16 label stack (``session.labels()``: object ids are
1..65535, checked when an object is added) and frames, then calls the matching
array-based exporter.  Any object with the same duck-typed attributes (``labels``,
``object_ids``, ``num_frames``, ``source.read``) works.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .ctc import CTCExport, write_ctc
from .geff import write_geff
from .images import write_label_stack, write_object_masks
from .lineage import DEFAULT_MIN_AREA, clean_frame
from .tracks import write_tracks_csv
from .video import write_overlay_video

__all__ = [
    "session_labels",
    "export_label_stack_from_session",
    "export_object_masks_from_session",
    "export_overlay_video_from_session",
    "export_ctc_from_session",
    "export_tracks_csv_from_session",
    "export_geff_from_session",
]


def session_labels(session: Any, frames: Any = None) -> np.ndarray:
    """(T, H, W) uint16 label stack of a session."""
    return session.labels(frames, dtype=np.uint16)


def export_label_stack_from_session(session: Any, path: str | os.PathLike, **kwargs: Any) -> Path:
    """:func:`write_label_stack` of the session's labels."""
    return write_label_stack(path, session_labels(session), **kwargs)


def export_object_masks_from_session(session: Any, folder: str | os.PathLike, **kwargs: Any) -> Path:
    """:func:`write_object_masks` for every session object (also those never found)."""
    kwargs.setdefault("object_ids", list(session.object_ids))
    return write_object_masks(folder, session_labels(session), **kwargs)


def export_overlay_video_from_session(
    session: Any, path: str | os.PathLike, *, min_area: int = DEFAULT_MIN_AREA, **kwargs: Any
) -> Path | None:
    """:func:`write_overlay_video` of the session's display frames and labels, one frame at a time.

    Specks under `min_area` pixels are left out, as in every other export (0 shows all).
    """
    return write_overlay_video(
        path,
        session.source.read,
        lambda i: clean_frame(session.labels([i])[0], min_area),
        num_frames=session.num_frames,
        **kwargs,
    )


def export_ctc_from_session(
    session: Any, folder: str | os.PathLike, parents: Mapping[int, int] | None = None, **kwargs: Any
) -> CTCExport:
    """:func:`write_ctc` of the session's labels (`parents`: {child id: mother id})."""
    return write_ctc(folder, session_labels(session), parents, **kwargs)


def export_tracks_csv_from_session(
    session: Any, path: str | os.PathLike, parents: Mapping[int, int] | None = None, **kwargs: Any
) -> Path:
    """:func:`write_tracks_csv` of the session's labels."""
    return write_tracks_csv(path, session_labels(session), parents, **kwargs)


def export_geff_from_session(
    session: Any, path: str | os.PathLike, parents: Mapping[int, int] | None = None, **kwargs: Any
) -> Path:
    """:func:`write_geff` of the session's labels (`parents`: {child id: mother id};
    keyword arguments such as `labels_path`, `min_area` are passed on)."""
    return write_geff(path, session_labels(session), parents, **kwargs)
