"""Files a visitor takes away: the result video with an effect, per-object mask PNGs (zip), the label stack.

All are written by the core's exporters into the visitor's own folder under fixed names.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from sam2_plugins.exports import write_label_stack, write_object_masks
from sam2_plugins.exports.effects import EFFECTS, write_effect_video

from .workspace import Workspace

EFFECT_LABELS = {
    "Coloured overlay": "overlay",
    "Blur the background": "blur_background",
    "Remove the background": "remove_background",
    "Highlight the objects": "highlight",
    "Grey out the rest": "grey_rest",
}
assert set(EFFECT_LABELS.values()) == set(EFFECTS)


def render_video(ws: Workspace, effect_label: str, progress: Callable[[int, int], None] | None = None) -> Path:
    """The tracked clip with `effect_label`'s effect as a browser-playable H.264 MP4."""
    effect = EFFECT_LABELS.get(effect_label)
    if effect is None:
        raise ValueError(f"unknown effect {effect_label!r}")
    clip = ws.clip
    frames = clip.frames()
    out = ws.path(f"sam2_{effect}.mp4")
    write_effect_video(out, lambda i: frames[i], ws.labels_on, clip.num_frames, effect,
                       fps=clip.fps, progress=progress)
    ws.outputs["video"] = out
    return out


def export_files(ws: Workspace) -> list[Path]:
    """The label stack (TIFF) and a zip of per-object mask PNG sequences; returns their paths."""
    clip = ws.clip
    # what the page shows on every frame, composed into a file read lazily (never the whole stack in memory)
    labels = np.lib.format.open_memmap(ws.path("shown_labels.npy"), mode="w+", dtype=np.uint16,
                                       shape=(clip.num_frames, clip.height, clip.width))
    for t in range(clip.num_frames):
        labels[t] = ws.labels_on(t)
    labels.flush()
    tif = write_label_stack(ws.path("sam2_labels.tif"), labels, min_area=0)
    masks_dir = ws.path("masks")
    shutil.rmtree(masks_dir, ignore_errors=True)
    write_object_masks(masks_dir, labels, object_ids=list(ws.objects), min_area=0)
    zpath = ws.path("sam2_masks.zip")
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as z:
        for png in sorted(masks_dir.iterdir()):
            z.write(png, f"masks/{png.name}")
    shutil.rmtree(masks_dir, ignore_errors=True)
    ws.outputs["labels"], ws.outputs["masks"] = tif, zpath
    return [zpath, tif]
