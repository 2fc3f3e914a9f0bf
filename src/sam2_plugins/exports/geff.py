"""GEFF (graph exchange file format, a zarr folder) tracking graphs, written with the `geff` package.

Nodes are detections: one per track segment per frame (segments as in
:mod:`sam2_plugins.exports.lineage`: specks under ``min_area`` pixels dropped,
one segment per contiguous run of frames).  Node properties:

==============  ==========================================================
``t``           frame index (axis type time, unit ``frame``)
``y``, ``x``    pixel centroid, row and column (axes of type space, unit ``pixel``)
``area``        pixel count
``seg_id``      the object's label value in the label image on that frame
                (``labels.tif``), i.e. the object id
``track_id``    the segment label: CTC label, tracks.csv/napari ``track_id``
``lineage_id``  the track_id of the segment's root (a weakly connected component)
==============  ==========================================================

Edges (directed, earlier -> later) join consecutive detections of a segment, and
the last detection of a parent segment to the first of each child segment
(divisions, and gap bridges between the runs of one object).  So the graph holds
exactly the CTC ``res_track.txt`` tracks and parents.  Metadata: axes ``t, y, x``
(time, space, space); ``track_node_props = {"lineage": "lineage_id"}`` (``track_id``
is not declared a GEFF *tracklet*: across a gap bridge a tracklet would continue);
``related_objects`` links the label image with ``node_prop="seg_id"`` when
``labels_path`` is given (stored relative to the GEFF folder); ``extra`` records
the speck rule's ``min_area``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Mapping

import numpy as np

from ._atomic import atomic_folder
from .lineage import DEFAULT_MIN_AREA, TrackSegments, track_segments

__all__ = ["write_geff", "geff_arrays"]

# entries of a geff zarr group (zarr v2 and v3); an existing folder with anything else is refused
_GEFF_ENTRIES = {".zgroup", ".zattrs", ".zmetadata", "zarr.json", "nodes", "edges"}

_NODE_PROPS = {
    "t": ("frame index", "frame"),
    "y": ("centroid row", "pixel"),
    "x": ("centroid column", "pixel"),
    "area": ("mask area in pixels", None),
    "seg_id": ("label value of the object in the label image on frame t (the object id)", None),
    "track_id": ("track segment label, as the CTC label and tracks.csv track_id", None),
    "lineage_id": ("track_id of the root segment of this lineage tree", None),
}


def geff_arrays(seg: TrackSegments) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Node ids, node property arrays and (E, 2) edges ``[source, target]`` of the GEFF graph.

    Node ids are 0..N-1 in the order of the detections (by track id, then frame).
    """
    n = len(seg)
    node_ids = np.arange(n, dtype=np.int64)
    tid = seg.track_id
    edges: list[np.ndarray] = []
    if n > 1:
        same = np.nonzero(tid[1:] == tid[:-1])[0]  # consecutive frames of one segment
        edges.append(np.stack([same, same + 1], axis=1))
    if n:
        labels, first = np.unique(tid, return_index=True)
        last = np.r_[first[1:], n] - 1
        first_of, last_of = dict(zip(labels.tolist(), first.tolist())), dict(zip(labels.tolist(), last.tolist()))
        links = [(last_of[tr.parent], first_of[tr.label]) for tr in seg.tracks if tr.parent]
        if links:
            edges.append(np.array(links, np.int64))
    edge_ids = np.concatenate(edges).astype(np.int64) if edges else np.zeros((0, 2), np.int64)
    parent = seg.parents
    root: dict[int, int] = {}
    for tr in seg.tracks:  # parents are always earlier segments, but resolve by walking up
        r = tr.label
        while parent.get(r, 0):
            r = parent[r]
        root[tr.label] = r
    props = {
        "t": seg.t.astype(np.int64),
        "y": seg.y.astype(np.float64),
        "x": seg.x.astype(np.float64),
        "area": seg.area.astype(np.int64),
        "seg_id": seg.object_id.astype(np.int64),
        "track_id": tid.astype(np.int64),
        "lineage_id": np.array([root[i] for i in tid.tolist()], np.int64),
    }
    return node_ids, props, edge_ids


def write_geff(
    path: str | os.PathLike,
    labels: Any,
    parents: Mapping[int, int] | None = None,
    *,
    min_area: int = DEFAULT_MIN_AREA,
    labels_path: str | os.PathLike | None = None,
    zarr_format: Literal[2, 3] = 2,
) -> Path:
    """Write the tracking graph of a (T, H, W) label stack as a GEFF zarr folder; returns `path`.

    `parents`: lineage {daughter object id: mother object id}.  Nodes, edges and
    properties are described in the module docs; segments, parents and specks
    (`min_area`, 0 keeps all) follow the rule every export shares, so node
    ``track_id``/edges match the CTC export and tracks.csv.  `labels_path`: the
    label image the ``seg_id`` values refer to (e.g. the ``labels.tif`` written by
    :func:`write_label_stack` with the same `min_area`), recorded as a GEFF related
    object of type ``labels`` with a path relative to `path`.  Read back with
    ``geff.read(path, backend="networkx")``.  The folder (conventionally
    ``*.geff`` or ``*.zarr``) is built aside and swapped in whole; an existing
    folder holding anything but a GEFF group is refused (FileExistsError).
    Needs the ``geff`` package.
    """
    from geff.core_io import write_arrays
    from geff_spec import Axis, GeffMetadata, PropMetadata, RelatedObject

    seg = track_segments(labels, parents, min_area=min_area)
    node_ids, props, edge_ids = geff_arrays(seg)
    final = Path(os.fspath(path)).expanduser()
    related = None
    if labels_path is not None:
        rel = os.path.relpath(Path(os.fspath(labels_path)).expanduser().absolute(), final.absolute())
        related = [RelatedObject(type="labels", path=Path(rel).as_posix(), node_prop="seg_id")]
    metadata = GeffMetadata(
        directed=True,
        axes=[
            Axis(name="t", type="time", unit="frame"),
            Axis(name="y", type="space", unit="pixel"),
            Axis(name="x", type="space", unit="pixel"),
        ],
        node_props_metadata={
            name: PropMetadata(identifier=name, dtype=str(props[name].dtype), description=desc, unit=unit)
            for name, (desc, unit) in _NODE_PROPS.items()
        },
        edge_props_metadata={},
        track_node_props={"lineage": "lineage_id"},
        related_objects=related,
        extra={"sam2_plugins": {"min_area": seg.min_area, "segments": "ctc", "num_frames": seg.num_frames}},
    )
    with atomic_folder(final, lambda name: name in _GEFF_ENTRIES) as tmp:
        tmp.rmdir()  # geff refuses any existing path: let it create the (still hidden) folder
        write_arrays(
            str(tmp),
            node_ids,
            {k: {"values": v, "missing": None} for k, v in props.items()},
            edge_ids,
            {},
            metadata,
            zarr_format=zarr_format,
        )
    return Path(path)
