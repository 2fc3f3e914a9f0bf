"""Cell Tracking Challenge (CTC) result folders: ``maskNNN.tif`` + ``res_track.txt``.

Format facts (CTC "Naming and file content conventions"): one uint16 label
image per frame, ``mask000.tif`` ... (three digits, four when there are more
than 1000 frames), 0 = background, a track keeps its label on every frame it
exists; ``res_track.txt`` has one line ``L B E P`` per track: label, first and
last frame (inclusive, 0-based) and parent label (0 = none).  The format demands
that a label be present on *every* frame from B to E and that a parent end
before its child begins.

Specks, gaps and lineage follow the rule shared by every export
(:mod:`sam2_plugins.exports.lineage`): pieces smaller than ``min_area`` pixels
are erased first (an object that is only a speck on a frame is absent there);
then each contiguous run of frames of an object is one CTC track.  The first run
keeps the object's id; each later run gets a fresh label (above the largest id,
in order of appearance) and the run before it as parent -- the CTC convention for
bridging a gap.  Lineage from `parents` ({child: parent}) links a child's first
run to the parent's last run that ends before the child begins (no such run:
P = 0 and a warning).  The CTC labels are the ``track_id`` of tracks.csv, napari
tracks and GEFF.

Fragments: the format asks only that each label be consistent with
``res_track.txt``; py-ctcmetrics' validator checks exactly that (not
connectivity) and TRA/SEG match labels by pixel overlap, so a label in several
disconnected pieces is valid.  ``fragments="keep"`` (default) therefore writes
the cleaned masks as they are (the same pixels as the label TIFF); ``"largest"``
keeps only each label's largest 8-connected piece per frame (secondary pieces of
``min_area`` pixels or more become background too), for downstream tools that
expect one blob per cell.  Presence, and so the tracks, are the same either way.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

import numpy as np
import tifffile
from scipy import ndimage as ndi

from ._atomic import atomic_folder
from .images import as_label_stack
from .lineage import DEFAULT_MIN_AREA, CTCTrack, clean_frame, ctc_tracks, track_segments

__all__ = ["CTCTrack", "CTCExport", "ctc_tracks", "ctc_mask_name", "write_ctc"]

_CTC_NAME = re.compile(r"mask\d+\.tif|res_track\.txt")


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
    min_area: int = DEFAULT_MIN_AREA,
) -> CTCExport:
    """Write a CTC result folder (e.g. ``01_RES``) from a (T, H, W) label stack.

    `parents` maps a child object id to its mother's id (divisions); ids absent
    from `labels` are ignored.  Specks (pieces under `min_area` pixels; 0 keeps
    all) are dropped, gaps split and lineage resolved as in the module docs;
    `fragments` picks what to do with labels in several pieces.
    Masks are uint16, uncompressed by default (`compression` e.g. ``"zlib"``).
    The folder is built aside and swapped in whole (an interrupted export leaves
    the previous one intact); an existing folder holding other files is refused.
    Returns the tracks written, including each CTC label's source object id.
    """
    if fragments not in ("keep", "largest"):
        raise ValueError(f"fragments must be 'keep' or 'largest', got {fragments!r}")
    labels = as_label_stack(labels)
    num_frames = int(labels.shape[0])
    segments = track_segments(labels, parents, min_area=min_area, max_label=0xFFFF)
    with atomic_folder(folder, lambda n: bool(_CTC_NAME.fullmatch(n))) as tmp:
        for t in range(num_frames):
            frame = clean_frame(labels[t], segments.min_area)
            ids, inv = np.unique(frame, return_inverse=True)
            on_frame = segments.labels_on(t)
            lut = np.array([on_frame.get(int(i), 0) for i in ids], np.uint16)
            out = lut[inv.reshape(frame.shape)]
            if fragments == "largest":
                out = _largest_pieces(out)
            tifffile.imwrite(tmp / ctc_mask_name(t, num_frames), out, compression=compression)
        text = "".join(f"{tr.label} {tr.begin} {tr.end} {tr.parent}\n" for tr in segments.tracks)
        with open(tmp / "res_track.txt", "w", encoding="ascii", newline="\n") as fh:
            fh.write(text)
    return CTCExport(Path(folder), list(segments.tracks))
