"""Tracks for napari's Tracks layer and as CSV: per-frame segment centroids plus a lineage graph.

Tracks are the segments of :mod:`sam2_plugins.exports.lineage` (specks under
``min_area`` pixels dropped, one segment per contiguous run of frames, gap and
division parents): ``track_id`` is the segment label, the same as the CTC label
written by :func:`~sam2_plugins.exports.write_ctc` and the GEFF ``track_id``.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ._atomic import atomic_file
from .lineage import DEFAULT_MIN_AREA, TrackSegments, track_segments

__all__ = ["tracks_table", "write_tracks_csv", "TRACKS_CSV_COLUMNS"]

TRACKS_CSV_COLUMNS = ("track_id", "t", "y", "x", "area", "parent_id", "object_id")


def tracks_table(
    labels: Any, parents: Mapping[int, int] | None = None, *, min_area: int = DEFAULT_MIN_AREA
) -> tuple[np.ndarray, dict[int, list[int]]]:
    """napari Tracks data from a (T, H, W) label stack.

    Returns ``(tracks, graph)``: `tracks` is an (N, 4) float64 array of
    ``[track_id, t, y, x]`` rows -- each segment's pixel centroid (row, column) on
    each frame of the segment, sorted by track id then t -- and `graph` maps a
    segment to ``[parent segment]`` for every segment with a parent: a division
    (from `parents`, {daughter object id: mother object id}) or a gap bridge (the
    object's run before the gap).  A segment never skips a frame.  Use as
    ``viewer.add_tracks(tracks, graph=graph)``.  `min_area`: see the speck rule.
    """
    seg = track_segments(labels, parents, min_area=min_area)
    tracks = np.stack([seg.track_id, seg.t, seg.y, seg.x], axis=1).astype(np.float64).reshape(-1, 4)
    return np.ascontiguousarray(tracks), seg.graph()


def _csv_text(seg: TrackSegments) -> str:
    parent = seg.parents
    buf = io.StringIO()
    buf.write(",".join(TRACKS_CSV_COLUMNS) + "\n")
    for tid, t, y, x, area, oid in zip(seg.track_id.tolist(), seg.t.tolist(), seg.y.tolist(),
                                        seg.x.tolist(), seg.area.tolist(), seg.object_id.tolist()):
        buf.write(f"{tid},{t},{y:.3f},{x:.3f},{area},{parent[tid]},{oid}\n")
    return buf.getvalue()


def write_tracks_csv(
    path: str | os.PathLike,
    labels: Any,
    parents: Mapping[int, int] | None = None,
    *,
    min_area: int = DEFAULT_MIN_AREA,
) -> Path:
    """Write the tracks as CSV, atomically; returns the path.

    Header ``track_id,t,y,x,area,parent_id,object_id``: one row per segment and
    frame, the first four columns being :func:`tracks_table`'s napari data,
    `area` the pixel count, `parent_id` the segment's parent (0 = none, the same
    on every row of a track; equal to ``res_track.txt``'s P) and `object_id` the
    object's label value in the label stack / ``labels.tif`` (a gap-split object
    keeps its object id across its segments).  Readable by pandas, numpy
    (``skiprows=1``) or any spreadsheet.
    """
    text = _csv_text(track_segments(labels, parents, min_area=min_area))
    with atomic_file(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
    return Path(path)
