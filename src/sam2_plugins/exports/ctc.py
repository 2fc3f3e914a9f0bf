"""Cell Tracking Challenge (CTC) result folders: ``maskNNN.tif`` + ``res_track.txt``.

Format facts (CTC "Naming and file content conventions"): one uint16 label
image per frame, ``mask000.tif`` ... (three digits, four when there are more
than 1000 frames), 0 = background, a track keeps its label on every frame it
exists; ``res_track.txt`` has one line ``L B E P`` per track: label, first and
last frame (inclusive, 0-based) and parent label (0 = none).  The format demands
that a label be present on *every* frame from B to E and that a parent end
before its child begins.

Gap handling: an object missing on some frames (left the field of view and came
back, occluded, lost for a while) is split into one CTC track per contiguous run
of frames.  The first run keeps the object's id; each later run gets a fresh label
(above the largest id, in order of appearance) and the run before it as parent --
the CTC convention for bridging a gap.  Lineage from `parents` ({child: parent})
links a child's first run to the parent's last run that ends before the child
begins (no such run: P = 0 and a warning).

Fragments: the format asks only that each label be consistent with
``res_track.txt``; py-ctcmetrics' validator checks exactly that (not
connectivity) and TRA/SEG match labels by pixel overlap, so a label in several
disconnected pieces is valid.  ``fragments="keep"`` (default) therefore writes
masks as they are (no pixel is lost); ``"largest"`` keeps only each label's
largest 8-connected piece per frame (stray speckles become background), for
downstream tools that expect one blob per cell.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

import numpy as np
import tifffile
from scipy import ndimage as ndi

from ._atomic import atomic_folder
from .images import as_label_stack

__all__ = ["CTCTrack", "CTCExport", "ctc_tracks", "ctc_mask_name", "write_ctc"]

_CTC_MAX = 0xFFFF
_CTC_NAME = re.compile(r"mask\d+\.tif|res_track\.txt")


@dataclass(frozen=True)
class CTCTrack:
    """One CTC track: `label` on frames `begin`..`end` (inclusive), `parent` label or 0.

    `source_id` is the object id in the input label stack that this track comes from.
    """

    label: int
    begin: int
    end: int
    parent: int
    source_id: int


@dataclass
class CTCExport:
    """What :func:`write_ctc` wrote: the folder and its tracks (sorted by label)."""

    folder: Path
    tracks: list[CTCTrack] = field(default_factory=list)

    def table(self) -> np.ndarray:
        """(N, 4) int64 array of ``[L, B, E, P]`` rows, as in ``res_track.txt``."""
        return np.array([[t.label, t.begin, t.end, t.parent] for t in self.tracks], np.int64).reshape(-1, 4)

    def source_ids(self) -> dict[int, int]:
        """CTC label -> object id in the input label stack."""
        return {t.label: t.source_id for t in self.tracks}


def ctc_mask_name(t: int, num_frames: int) -> str:
    """``maskNNN.tif``: 3 digits, or as many as the last index needs (4 beyond 1000 frames)."""
    return f"mask{int(t):0{max(3, len(str(max(num_frames - 1, 0))))}d}.tif"


def _runs(frames: list[int]) -> list[tuple[int, int]]:
    """Maximal runs of consecutive integers in a sorted list, as (first, last)."""
    out: list[tuple[int, int]] = []
    for f in frames:
        if out and f == out[-1][1] + 1:
            out[-1] = (out[-1][0], f)
        else:
            out.append((f, f))
    return out


def ctc_tracks(presence: Mapping[int, list[int]], parents: Mapping[int, int] | None = None) -> list[CTCTrack]:
    """CTC tracks for objects present on the given frames ({id: sorted frame list}).

    Splits gaps and resolves lineage as described in the module docs; raises
    ValueError if the labels would not fit CTC's 16-bit range.
    """
    parents = dict(parents or {})
    ids = sorted(i for i, fr in presence.items() if fr)
    too_big = [i for i in ids if i > _CTC_MAX]
    if too_big:
        raise ValueError(f"CTC labels are 16-bit; object ids {too_big[:5]} exceed 65535 (relabel first)")
    runs = {i: _runs(sorted(presence[i])) for i in ids}
    pending = sorted(((r[0], i, k) for i in ids for k, r in enumerate(runs[i]) if k > 0))
    used = set(ids)
    nxt = max(ids, default=0) + 1
    free_low = 1
    labels: dict[tuple[int, int], int] = {(i, 0): i for i in ids}
    for _, i, k in pending:  # fresh labels above the largest id, then any unused ones
        while nxt in used and nxt <= _CTC_MAX:
            nxt += 1
        if nxt > _CTC_MAX:
            while free_low in used:
                free_low += 1
            nxt = free_low
        if nxt > _CTC_MAX:
            raise ValueError("more than 65535 CTC tracks after splitting gaps")
        labels[(i, k)] = nxt
        used.add(nxt)
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
            stacklevel=4,
        )
        return 0
    return labels[(p, before[-1])]


def _largest_pieces(frame: np.ndarray) -> np.ndarray:
    """Keep only the largest 8-connected piece of every label (others -> 0)."""
    out = frame.copy()
    structure = np.ones((3, 3), bool)
    for idx, sl in enumerate(ndi.find_objects(frame), start=1):
        if sl is None:
            continue
        mask = frame[sl] == idx
        pieces, n = ndi.label(mask, structure=structure)
        if n > 1:
            sizes = np.bincount(pieces.ravel())
            sizes[0] = 0
            drop = mask & (pieces != int(np.argmax(sizes)))
            out[sl][drop] = 0
    return out


def write_ctc(
    folder: str | os.PathLike,
    labels: Any,
    parents: Mapping[int, int] | None = None,
    *,
    fragments: Literal["keep", "largest"] = "keep",
    compression: str | None = None,
) -> CTCExport:
    """Write a CTC result folder (e.g. ``01_RES``) from a (T, H, W) label stack.

    `parents` maps a child object id to its mother's id (divisions); ids absent
    from `labels` are ignored.  Gaps are split and lineage resolved as in the
    module docs; `fragments` picks what to do with labels in several pieces.
    Masks are uint16, uncompressed by default (`compression` e.g. ``"zlib"``).
    The folder is built aside and swapped in whole (an interrupted export leaves
    the previous one intact); an existing folder holding other files is refused.
    Returns the tracks written, including each CTC label's source object id.
    """
    if fragments not in ("keep", "largest"):
        raise ValueError(f"fragments must be 'keep' or 'largest', got {fragments!r}")
    labels = as_label_stack(labels)
    num_frames = int(labels.shape[0])
    presence: dict[int, list[int]] = {}
    for t in range(num_frames):
        frame = np.asarray(labels[t])
        if frame.size and frame.min() < 0:
            raise ValueError(f"label ids must be >= 0, found {frame.min()} on frame {t}")
        for i in np.unique(frame):
            if i:
                presence.setdefault(int(i), []).append(t)
    tracks = ctc_tracks(presence, parents)
    by_frame: dict[int, dict[int, int]] = {}
    for tr in tracks:
        for t in range(tr.begin, tr.end + 1):
            by_frame.setdefault(t, {})[tr.source_id] = tr.label
    with atomic_folder(folder, lambda n: bool(_CTC_NAME.fullmatch(n))) as tmp:
        for t in range(num_frames):
            frame = np.asarray(labels[t])
            ids, inv = np.unique(frame, return_inverse=True)
            lut = np.array([by_frame.get(t, {}).get(int(i), 0) for i in ids], np.uint16)
            out = lut[inv.reshape(frame.shape)]
            if fragments == "largest":
                out = _largest_pieces(out)
            tifffile.imwrite(tmp / ctc_mask_name(t, num_frames), out, compression=compression)
        text = "".join(f"{tr.label} {tr.begin} {tr.end} {tr.parent}\n" for tr in tracks)
        with open(tmp / "res_track.txt", "w", encoding="ascii", newline="\n") as fh:
            fh.write(text)
    return CTCExport(Path(folder), tracks)
