"""The shipped sample: a synthetic 16-bit fluorescence time-lapse and one click per cell on frame 0."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np

SAMPLE_SEED = 20261122
SAMPLE_SHAPE = dict(num_frames=30, height=192, width=192, num_cells=8)


def sample_paths() -> tuple[Path, Path]:
    """(time-lapse TIFF, prompts JSON) of the sample shipped with the package."""
    folder = resources.files("sam2_plugins").joinpath("data")
    return Path(str(folder.joinpath("sample_cells.tif"))), Path(str(folder.joinpath("sample_cells.prompts.json")))


def interior_point(mask: np.ndarray) -> tuple[float, float]:
    """(x, y) of the pixel of ``mask`` farthest from its border: a click a person would make."""
    from scipy import ndimage

    dist = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return float(x), float(y)


def clicks_for_labels(labels: np.ndarray, frame: int = 0) -> list[dict]:
    """One positive click per object present on ``labels[frame]``, as prompts-file entries."""
    entries = []
    for obj_id in np.unique(labels[frame]):
        if obj_id == 0:
            continue
        x, y = interior_point(labels[frame] == obj_id)
        entries.append({"id": int(obj_id), "frame": frame, "points": [[x, y]], "labels": [1]})
    return entries


def write_sample(folder: "str | Path") -> tuple[Path, Path]:
    """Regenerate the sample files (deterministic) into ``folder``."""
    import tifffile

    from .synthetic import make_timelapse

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lapse = make_timelapse(SAMPLE_SEED, dtype=np.uint16, **SAMPLE_SHAPE)
    tif = folder / "sample_cells.tif"
    tifffile.imwrite(tif, lapse.frames, imagej=True, metadata={"axes": "TYX"}, compression="zlib")
    prompts = folder / "sample_cells.prompts.json"
    prompts.write_text(json.dumps({"objects": clicks_for_labels(lapse.labels)}, indent=1))
    np.savez_compressed(folder / "sample_cells.truth.npz", labels=lapse.labels.astype(np.uint16))
    return tif, prompts
