"""Seeded synthetic videos with exact ground truth, for tests, demos,
benchmarks and training: microscopy cell time-lapses (fluorescence or
phase contrast, with divisions and lineage) and generic RGB scenes with
occluding textured shapes."""

from ._common import label_overlay, percentile_stretch
from .cells import TimeLapse, Track, make_timelapse, make_timelapse_batch
from .scenes import SceneVideo, make_scene_video

__all__ = [
    "SceneVideo",
    "TimeLapse",
    "Track",
    "label_overlay",
    "make_scene_video",
    "make_timelapse",
    "make_timelapse_batch",
    "percentile_stretch",
]
