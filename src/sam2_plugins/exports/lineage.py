"""Track segments: the one rule every export uses for specks, gaps and lineage.

Specks (``min_area``, default :data:`DEFAULT_MIN_AREA` = 10 pixels): every
8-connected piece of an object's mask smaller than `min_area` pixels is erased
(set to background) before anything is written; an object left with no pixels on
a frame is absent from that frame.  So a stray speck beside a cell disappears, and
an object that is only a speck on some frame counts as missing there, exactly like
a frame where it was not found at all (a gap, or a later start / earlier end).
An object's largest piece is always kept when it has `min_area` pixels; its other
pieces are kept only when they too reach `min_area`; an object made only of
pieces under `min_area` is absent even if they add up to more (pieces are judged
one by one, never by the total, which keeps the rule idempotent: cleaning a
cleaned stack changes nothing).  ``min_area=0`` (or 1) keeps every pixel.
Pieces are 8-connected pixels of one label value; two touching objects are
separate pieces.

Gaps and lineage (the Cell Tracking Challenge convention, :func:`ctc_tracks`):
each maximal run of consecutive frames on which an object is present is one
*segment*.  An object's first run keeps the object's id as its segment label;
each later run gets a fresh label (above the largest id, in order of appearance)
whose parent is the run before it.  Lineage ``parents`` ({daughter id: mother
id}) links a daughter's first run to the mother's last run that ends before the
daughter begins (none: no parent, with a warning).

The label TIFF, PNG masks, CTC folder, tracks CSV / napari tracks and GEFF graph
all apply this rule through :func:`clean_frame` and :func:`track_segments`, so
they agree on every pixel, on which object is present on which frame, and on the
segment labels (= CTC labels = ``track_id``) and parents.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
from skimage.measure import label as _connected_pieces

__all__ = [
    "DEFAULT_MIN_AREA",
    "as_label_stack",
    "CTCTrack",
    "TrackSegments",
    "clean_frame",
    "clean_labels",
    "ctc_tracks",
    "track_segments",
]

DEFAULT_MIN_AREA = 10
"""Pieces of an object's mask smaller than this many pixels are dropped (0 keeps all)."""

_CTC_MAX = 0xFFFF


# ---------------------------------------------------------------------------- specks
def as_label_stack(labels: Any) -> Any:
    """Check a label stack: (T, H, W) (or one (H, W) frame) of non-negative integers.

    Returns `labels` itself (array-likes such as memmaps are not loaded), or a
    (1, H, W) view of a single frame.
    """
    if not hasattr(labels, "shape") or not hasattr(labels, "dtype"):
        labels = np.asarray(labels)
    if len(labels.shape) == 2:
        labels = np.asarray(labels)[None]
    if len(labels.shape) != 3:
        raise ValueError(f"labels must be (T, H, W) or (H, W), got shape {tuple(labels.shape)}")
    kind = np.dtype(labels.dtype).kind
    if kind not in "biu":
        raise TypeError(f"labels must hold integer ids, got dtype {labels.dtype}")
    return labels


def _check_min_area(min_area: Any) -> int:
    m = int(min_area)
    if m != min_area or m < 0:
        raise ValueError(f"min_area must be a non-negative integer, got {min_area!r}")
    return m


def clean_frame(frame: Any, min_area: int = DEFAULT_MIN_AREA) -> np.ndarray:
    """One (H, W) label frame with the speck rule applied (see module docs).

    Erases every 8-connected piece of a label smaller than `min_area` pixels.
    Returns `frame` itself (as an array, not copied) when nothing is erased.
    """
    frame = np.asarray(frame)
    m = _check_min_area(min_area)
    if m <= 1 or not frame.size or not frame.any():
        return frame
    if frame.min() < 0:
        raise ValueError(f"label ids must be >= 0, found {frame.min()}")
    pieces = _connected_pieces(frame, background=0, connectivity=frame.ndim)
    sizes = np.bincount(pieces.ravel())
    small = sizes < m
    small[0] = False
    if not small.any():
        return frame
    out = frame.copy()
    out[small[pieces]] = 0
    return out


def clean_labels(labels: Any, min_area: int = DEFAULT_MIN_AREA) -> np.ndarray:
    """A (T, H, W) label stack with the speck rule applied frame by frame (a new array
    where anything changed; `labels` itself when nothing did)."""
    labels = as_label_stack(labels)
    m = _check_min_area(min_area)
    frames = [np.asarray(labels[t]) for t in range(labels.shape[0])]
    cleaned = [clean_frame(f, m) for f in frames]
    if all(c is f for c, f in zip(cleaned, frames)) and isinstance(labels, np.ndarray):
        return labels
    if not cleaned:
        return np.asarray(labels)
    return np.stack(cleaned)


# ---------------------------------------------------------------------------- segments
@dataclass(frozen=True)
class CTCTrack:
    """One track segment: `label` on frames `begin`..`end` (inclusive), `parent` label or 0.

    `source_id` is the object id in the input label stack that this segment comes
    from.  `label` is the CTC label, the ``track_id`` of tracks.csv / napari and GEFF.
    """

    label: int
    begin: int
    end: int
    parent: int
    source_id: int


def _runs(frames: list[int]) -> list[tuple[int, int]]:
    """Maximal runs of consecutive integers in a sorted list, as (first, last)."""
    out: list[tuple[int, int]] = []
    for f in frames:
        if out and f == out[-1][1] + 1:
            out[-1] = (out[-1][0], f)
        else:
            out.append((f, f))
    return out


def ctc_tracks(
    presence: Mapping[int, list[int]],
    parents: Mapping[int, int] | None = None,
    *,
    max_label: int | None = _CTC_MAX,
) -> list[CTCTrack]:
    """Track segments for objects present on the given frames ({id: sorted frame list}).

    Splits gaps and resolves lineage as described in the module docs; sorted by
    label.  Fresh labels go above the largest id, then (16-bit labels above it
    used up) to the lowest free ones, as CTC needs.  `max_label` (default 65535,
    CTC's 16-bit range; None: no limit) raises ValueError for an id or a fresh
    label above it; without a limit, ids above 65535 are allowed and fresh labels
    go past 65535 only where no 16-bit label is left -- so the labels are the
    CTC labels whenever a CTC export is possible.
    """
    parents = dict(parents or {})
    ids = sorted(i for i, fr in presence.items() if fr)
    too_big = [i for i in ids if max_label is not None and i > max_label]
    if too_big:
        what = "CTC labels are 16-bit" if max_label == _CTC_MAX else f"labels must be <= {max_label}"
        raise ValueError(f"{what}; object ids {too_big[:5]} exceed {max_label} (relabel first)")
    runs = {i: _runs(sorted(presence[i])) for i in ids}
    pending = sorted(((r[0], i, k) for i in ids for k, r in enumerate(runs[i]) if k > 0))
    used = set(ids)
    nxt = max(ids, default=0) + 1
    beyond = nxt - 1 > _CTC_MAX  # ids beyond 16 bits: not CTC anyway, simply count up
    free_low = 1
    labels: dict[tuple[int, int], int] = {(i, 0): i for i in ids}
    for _, i, k in pending:
        if not beyond:  # fresh labels above the largest id, then any unused ones
            while nxt in used and nxt <= _CTC_MAX:
                nxt += 1
            if nxt > _CTC_MAX:
                while free_low in used:
                    free_low += 1
                nxt = free_low
            if nxt > _CTC_MAX:
                beyond, nxt = True, max(used) + 1
        if max_label is not None and nxt > max_label:
            raise ValueError(
                "more than 65535 CTC tracks after splitting gaps" if max_label == _CTC_MAX
                else f"more than {max_label} tracks after splitting gaps"
            )
        labels[(i, k)] = nxt
        used.add(nxt)
        if beyond:
            nxt += 1
    tracks: list[CTCTrack] = []
    for i in ids:
        for k, (b, e) in enumerate(runs[i]):
            if k > 0:
                parent = labels[(i, k - 1)]
            else:
                parent = _parent_label(i, b, parents, runs, labels)
            tracks.append(CTCTrack(labels[(i, k)], b, e, parent, i))
    return sorted(tracks, key=lambda t: t.label)


def _parent_label(child: int, begin: int, parents: Mapping[int, int], runs, labels) -> int:
    p = int(parents.get(child, 0) or 0)
    if p == 0 or p == child or p not in runs:
        return 0
    before = [k for k, (_, e) in enumerate(runs[p]) if e < begin]
    if not before:
        warnings.warn(
            f"object {child} starts on frame {begin} but its parent {p} does not end before that; "
            "written without a parent (CTC requires the parent to end first)",
            stacklevel=5,
        )
        return 0
    return labels[(p, before[-1])]


@dataclass
class TrackSegments:
    """Segments and per-frame detections of a label stack, after the speck rule.

    `tracks`: the segments (sorted by label).  Detections, one per segment per
    frame, sorted by track id then frame, as parallel arrays: `track_id`, `t`
    (int64), `y`, `x` (pixel centroid, float64), `area` (pixels, int64) and
    `object_id` (the label value in the cleaned label stack, int64).
    """

    tracks: list[CTCTrack]
    track_id: np.ndarray
    t: np.ndarray
    y: np.ndarray
    x: np.ndarray
    area: np.ndarray
    object_id: np.ndarray
    num_frames: int
    min_area: int
    _by_frame: dict[int, dict[int, int]] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return int(self.track_id.shape[0])

    @property
    def parents(self) -> dict[int, int]:
        """Segment label -> parent segment label (0 = none), for every segment."""
        return {tr.label: tr.parent for tr in self.tracks}

    def graph(self) -> dict[int, list[int]]:
        """napari Tracks graph: segment label -> [parent label], for segments with a parent."""
        return {tr.label: [tr.parent] for tr in self.tracks if tr.parent}

    def table(self) -> np.ndarray:
        """(N, 4) int64 ``[label, begin, end, parent]`` rows, as in CTC ``res_track.txt``."""
        return np.array([[t.label, t.begin, t.end, t.parent] for t in self.tracks], np.int64).reshape(-1, 4)

    def labels_on(self, t: int) -> dict[int, int]:
        """Object id -> segment label for the objects present on frame `t`."""
        return self._by_frame.get(int(t), {})


def _measure_frame(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """ids (>0), area, centroid y, centroid x of the objects of one label frame."""
    h, w = frame.shape
    flat = frame.ravel()
    hi = int(flat.max()) if flat.size else 0
    if hi <= (1 << 20):
        idx, n = flat.astype(np.intp, copy=False), hi + 1
        ids_all = np.arange(n)
    else:
        ids_all, idx = np.unique(flat, return_inverse=True)
        idx, n = idx.ravel(), len(ids_all)
    area = np.bincount(idx, minlength=n)
    rows = np.arange(h, dtype=np.float64)
    sy = np.bincount(idx, weights=np.repeat(rows, w), minlength=n)
    sx = np.bincount(idx, weights=np.tile(np.arange(w, dtype=np.float64), h), minlength=n)
    keep = (area > 0) & (ids_all != 0)
    a = area[keep]
    return ids_all[keep].astype(np.int64), a.astype(np.int64), sy[keep] / a, sx[keep] / a


def track_segments(
    labels: Any,
    parents: Mapping[int, int] | None = None,
    *,
    min_area: int = DEFAULT_MIN_AREA,
    max_label: int | None = None,
) -> TrackSegments:
    """Apply the speck rule and the segment rule (module docs) to a (T, H, W) label stack.

    `parents` is the lineage {daughter id: mother id} (0 or missing = none; ids
    absent from `labels` are ignored).  `max_label`: see :func:`ctc_tracks` (the
    CTC export passes 65535; the labels are the same either way whenever they fit).
    Frames are read one at a time, so a memmapped stack is not loaded whole.
    """
    labels = as_label_stack(labels)
    m = _check_min_area(min_area)
    num_frames = int(labels.shape[0])
    cols: list[tuple[np.ndarray, ...]] = []
    presence: dict[int, list[int]] = {}
    for t in range(num_frames):
        frame = np.asarray(labels[t])
        if frame.size and frame.min() < 0:
            raise ValueError(f"label ids must be >= 0, found {frame.min()} on frame {t}")
        ids, area, cy, cx = _measure_frame(clean_frame(frame, m))
        cols.append((ids, np.full(len(ids), t, np.int64), cy, cx, area))
        for i in ids.tolist():
            presence.setdefault(i, []).append(t)
    tracks = ctc_tracks(presence, parents, max_label=max_label)
    by_frame: dict[int, dict[int, int]] = {}
    for tr in tracks:
        for t in range(tr.begin, tr.end + 1):
            by_frame.setdefault(t, {})[tr.source_id] = tr.label
    if cols:
        obj, tt, yy, xx, aa = (np.concatenate(c) for c in zip(*cols))
    else:
        obj = tt = aa = np.zeros(0, np.int64)
        yy = xx = np.zeros(0, np.float64)
    tid = np.array([by_frame[t][o] for o, t in zip(obj.tolist(), tt.tolist())], np.int64)
    order = np.lexsort((tt, tid))
    return TrackSegments(
        tracks=tracks, track_id=tid[order], t=tt[order], y=yy[order], x=xx[order], area=aa[order],
        object_id=obj[order], num_frames=num_frames, min_area=m, _by_frame=by_frame,
    )
