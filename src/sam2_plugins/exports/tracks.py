"""Tracks for napari's Tracks layer: per-frame object centroids plus a lineage graph."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ._atomic import atomic_file
from .images import as_label_stack

__all__ = ["tracks_table", "write_tracks_csv", "TRACKS_CSV_COLUMNS"]

TRACKS_CSV_COLUMNS = ("track_id", "t", "y", "x", "area", "parent_id")


def _measure(labels: Any) -> np.ndarray:
    """(N, 5) float64 rows [id, t, y, x, area] for every object on every frame, sorted by id then t."""
    labels = as_label_stack(labels)
    _, h, w = labels.shape
    yy = np.repeat(np.arange(h, dtype=np.float64), w)
    xx = np.tile(np.arange(w, dtype=np.float64), h)
    rows = []
    for t in range(labels.shape[0]):
        frame = np.asarray(labels[t]).ravel()
        ids, inv = np.unique(frame, return_inverse=True)
        inv = inv.ravel()
        area = np.bincount(inv, minlength=len(ids)).astype(np.float64)
        sy = np.bincount(inv, weights=yy, minlength=len(ids))
        sx = np.bincount(inv, weights=xx, minlength=len(ids))
        keep = ids != 0
        n = int(keep.sum())
        if n:
            a = area[keep]
            rows.append(np.stack([ids[keep].astype(np.float64), np.full(n, float(t)),
                                  sy[keep] / a, sx[keep] / a, a], axis=1))
    if not rows:
        return np.zeros((0, 5))
    out = np.concatenate(rows)
    return out[np.lexsort((out[:, 1], out[:, 0]))]


def _graph(ids: np.ndarray, parents: Mapping[int, int] | None) -> dict[int, list[int]]:
    present = {int(i) for i in ids}
    return {
        int(c): [int(p)]
        for c, p in sorted((parents or {}).items())
        if p and int(c) in present and int(p) in present and int(p) != int(c)
    }


def tracks_table(
    labels: Any, parents: Mapping[int, int] | None = None
) -> tuple[np.ndarray, dict[int, list[int]]]:
    """napari Tracks data from a (T, H, W) label stack.

    Returns ``(tracks, graph)``: `tracks` is an (N, 4) float64 array of
    ``[track_id, t, y, x]`` rows -- each object's pixel centroid (row, column) on each
    frame it is present, track_id = object id, sorted by id then t (a track may skip
    frames) -- and `graph` maps a child id to ``[parent id]`` for each entry of
    `parents` ({child: parent}) whose two objects both appear.  Use as
    ``viewer.add_tracks(tracks, graph=graph)``.
    """
    rows = _measure(labels)
    return np.ascontiguousarray(rows[:, :4]), _graph(rows[:, 0], parents)


def write_tracks_csv(
    path: str | os.PathLike, labels: Any, parents: Mapping[int, int] | None = None
) -> Path:
    """Write :func:`tracks_table` as CSV, atomically; returns the path.

    Header ``track_id,t,y,x,area,parent_id``: one row per object and frame, the
    first four columns being napari's Tracks data, `area` the object's pixel count
    and `parent_id` its mother's id from the graph (0 = none, same on every row of
    a track).  Readable by pandas, numpy (``skiprows=1``) or any spreadsheet.
    """
    rows = _measure(labels)
    graph = _graph(rows[:, 0], parents)
    buf = io.StringIO()
    buf.write(",".join(TRACKS_CSV_COLUMNS) + "\n")
    for tid, t, y, x, area in rows:
        parent = graph.get(int(tid), [0])[0]
        buf.write(f"{int(tid)},{int(t)},{y:.3f},{x:.3f},{int(area)},{parent}\n")
    with atomic_file(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(buf.getvalue())
    return Path(path)
