"""Exports of tracking results in the formats each field uses; every write is atomic.

All exporters take plain arrays -- a (T, H, W) integer label stack (0 =
background, else object id), optional frames, optional lineage ``parents``
({child id: parent id}) -- so they work on a session's results or on any label
stack; ``export_*_from_session`` wrap them for a
:class:`~sam2_plugins.video.VideoSession`.

One rule for specks, gaps and lineage, shared by every export
(:mod:`~sam2_plugins.exports.lineage`): every 8-connected piece of an object's
mask smaller than ``min_area`` pixels (default 10; 0 keeps all) is erased, and an
object left with no pixels on a frame is absent there.  Each contiguous run of
frames of an object is then one track segment: the first keeps the object id,
later runs get fresh labels with the run before as parent, and a daughter's first
run has the mother's last run ending before it as parent (the CTC convention), so
CTC labels, tracks.csv / napari ``track_id`` and GEFF ``track_id`` are the same.

==========================  ====================================================
:func:`write_label_stack`   TIFF stack (ImageJ hyperstack TYX, uint16/uint32)
:func:`write_object_masks`  ``obj{ID:03d}_t{T:04d}.png`` 0/255 masks, one folder
:func:`write_overlay_video` H.264 MP4 with coloured outlined objects (PyAV)
:func:`write_ctc`           Cell Tracking Challenge ``maskNNN.tif`` + ``res_track.txt``
:func:`tracks_table`        napari Tracks ``(tracks, graph)``; :func:`write_tracks_csv`
:func:`write_geff`          GEFF tracking graph (zarr), read with ``geff.read``
:func:`track_segments`      the shared segments; :func:`clean_labels` the speck rule
==========================  ====================================================

Atomicity: a file is written under a hidden temporary name in the same folder,
fsynced and renamed over the target; a multi-file export is built in a hidden
temporary folder and swapped in whole.  An interrupted or cancelled export never
leaves a partial file under the final name, and the previous output stays intact.
"""

from ._atomic import atomic_file, atomic_folder
from .ctc import CTCExport, ctc_mask_name, write_ctc
from .from_session import (
    export_ctc_from_session,
    export_geff_from_session,
    export_label_stack_from_session,
    export_object_masks_from_session,
    export_overlay_video_from_session,
    export_tracks_csv_from_session,
    session_labels,
)
from .effects import EFFECTS, apply_effect, write_effect_video
from .geff import write_geff
from .images import object_mask_name, write_label_stack, write_object_masks
from .lineage import (
    DEFAULT_MIN_AREA,
    CTCTrack,
    TrackSegments,
    clean_frame,
    clean_labels,
    ctc_tracks,
    track_segments,
)
from .tracks import TRACKS_CSV_COLUMNS, tracks_table, write_tracks_csv
from .video import object_colors, overlay_labels, to_rgb_uint8, write_overlay_video

__all__ = [
    "EFFECTS",
    "CTCExport",
    "CTCTrack",
    "DEFAULT_MIN_AREA",
    "TRACKS_CSV_COLUMNS",
    "TrackSegments",
    "atomic_file",
    "atomic_folder",
    "clean_frame",
    "clean_labels",
    "ctc_mask_name",
    "ctc_tracks",
    "apply_effect",
    "write_effect_video",
    "export_ctc_from_session",
    "export_geff_from_session",
    "export_label_stack_from_session",
    "export_object_masks_from_session",
    "export_overlay_video_from_session",
    "export_tracks_csv_from_session",
    "object_colors",
    "object_mask_name",
    "overlay_labels",
    "session_labels",
    "to_rgb_uint8",
    "track_segments",
    "tracks_table",
    "write_ctc",
    "write_geff",
    "write_label_stack",
    "write_object_masks",
    "write_overlay_video",
    "write_tracks_csv",
]
