"""Contact-sheet previews of the synthetic generators (for eyeballing realism)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._common import contact_sheet, label_overlay, percentile_stretch
from .cells import make_timelapse
from .scenes import make_scene_video


def _sheet_rows(frames: np.ndarray, labels: np.ndarray, idx: list[int]) -> list[list[np.ndarray]]:
    """Two rows: the frames, then the same frames with label overlays."""
    return [[frames[i] for i in idx], [label_overlay(frames[i], labels[i]) for i in idx]]


def save_previews(
    out_dir: str | Path = "/tmp", seed: int = 0, prefix: str = "synthetic_preview_"
) -> list[Path]:
    """Write PNG contact sheets of every style for `seed`; returns the paths."""
    from PIL import Image

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for style, dtype, name in (
        ("fluorescence", np.uint8, "fluorescence"),
        ("fluorescence", np.uint16, "fluorescence16"),
        ("phase", np.uint8, "phase"),
    ):
        tl = make_timelapse(seed, style=style, dtype=dtype)
        idx = list(np.linspace(0, tl.num_frames - 1, 5).astype(int))
        disp = percentile_stretch(tl.frames) if dtype == np.uint16 else tl.frames
        paths.append(out / f"{prefix}{name}.png")
        Image.fromarray(contact_sheet(_sheet_rows(disp, tl.labels, idx))).save(paths[-1])
    sv = make_scene_video(seed)
    idx = list(np.linspace(0, sv.num_frames - 1, 5).astype(int))
    paths.append(out / f"{prefix}scene.png")
    Image.fromarray(contact_sheet(_sheet_rows(sv.frames, sv.labels, idx))).save(paths[-1])
    return paths


if __name__ == "__main__":
    for p in save_previews():
        print(p)
