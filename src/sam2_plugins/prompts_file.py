"""The prompts file of the command line: which objects to track, from which clicks, boxes or masks."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .prompts import validate_object_id

PROMPTS_HELP = """\
PROMPTS.json lists the objects to track and what marks them. Each entry is one prompt on one frame:
  {"objects": [
     {"id": 1, "frame": 0, "points": [[35, 30], [60, 41]], "labels": [1, 0]},
     {"id": 2, "frame": 0, "box": [80, 50, 110, 80]},
     {"id": 3, "frame": 9, "mask": "masks/cell3.png"},
     {"id": 1, "frame": 12, "points": [[70, 44]], "labels": [1]}
   ],
   "parents": {"4": 2}}
- "id": object id (integer from 1 to 65535; it becomes the label value in exports)
- "frame": frame index (0-based)
- "points": (x, y) pixels with "labels" 1 (object) or 0 (background); "box": (x0, y0, x1, y1)
  pixels (may be combined with points); "mask": an image file (non-zero = object), relative to
  the prompts file, of the frame's size
- several entries for one id on different frames are corrections; the track follows all of them
- "parents" (optional): lineage {daughter id: mother id} for the Cell Tracking Challenge export
"""


@dataclass
class Prompt:
    obj_id: int
    frame: int
    points: list | None = None
    labels: list | None = None
    box: list | None = None
    mask: np.ndarray | None = None


@dataclass
class PromptsFile:
    prompts: list[Prompt]
    parents: dict[int, int] = field(default_factory=dict)


def read_prompts(path: "str | Path") -> PromptsFile:
    """Parse and check a prompts file (see :data:`PROMPTS_HELP`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prompts file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None
    entries = data.get("objects") if isinstance(data, dict) else data
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: expected a non-empty list under \"objects\"")
    prompts = [_prompt(path, i, e) for i, e in enumerate(entries)]
    parents_raw = data.get("parents", {}) if isinstance(data, dict) else {}
    try:
        parents = {int(k): int(v) for k, v in parents_raw.items()}
    except (TypeError, ValueError, AttributeError):
        raise ValueError(f"{path}: \"parents\" must map daughter ids to mother ids") from None
    return PromptsFile(prompts, parents)


def _prompt(path: Path, i: int, e: Any) -> Prompt:
    where = f"{path}: objects[{i}]"
    if not isinstance(e, dict):
        raise ValueError(f"{where} must be an object with id, frame and points/box/mask")
    unknown = set(e) - {"id", "frame", "points", "labels", "box", "mask"}
    if unknown:
        raise ValueError(f"{where} has unknown keys: {', '.join(sorted(unknown))}")
    if not isinstance(e.get("frame"), int) or isinstance(e.get("frame"), bool) or e["frame"] < 0:
        raise ValueError(f"{where} needs an integer \"frame\" >= 0")
    try:
        validate_object_id(e.get("id"))
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    if not any(k in e for k in ("points", "box", "mask")):
        raise ValueError(f"{where} has no \"points\", \"box\" or \"mask\"")
    if "mask" in e and ("points" in e or "box" in e):
        raise ValueError(f"{where}: a mask prompt cannot be combined with points or a box")
    if ("points" in e) != ("labels" in e):
        raise ValueError(f"{where}: \"points\" and \"labels\" go together")
    mask = None
    if "mask" in e:
        from PIL import Image

        mask_path = (path.parent / e["mask"]).resolve()
        if not mask_path.is_file():
            raise FileNotFoundError(f"{where}: mask file not found: {mask_path}")
        mask = np.asarray(Image.open(mask_path)) > 0
        if mask.ndim == 3:
            mask = mask.any(axis=2)
    return Prompt(e["id"], e["frame"], e.get("points"), e.get("labels"), e.get("box"), mask)


def read_label_image(path: "str | Path") -> np.ndarray:
    """A label image file (TIFF, PNG, ...): (H, W) integers, 0 = background."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label image not found: {path}")
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            labels = tifffile.imread(path)
        else:
            from PIL import Image

            labels = np.asarray(Image.open(path))
    except Exception as err:  # noqa: BLE001 - any reader error means the same to the user
        raise ValueError(f"{path} is not a readable image ({err})") from None
    labels = np.squeeze(labels)
    if labels.ndim != 2:
        raise ValueError(f"{path} is not one label image: shape {labels.shape} (expected height x width)")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{path} holds {labels.dtype} values: a label image holds integers (0 = background)")
    return labels


def apply_prompts(session, prompts: PromptsFile) -> None:
    """Add every prompt of the file to a session, in file order, and its lineage."""
    for p in prompts.prompts:
        if p.mask is not None:
            session.add_mask(p.frame, p.obj_id, p.mask)
        elif p.box is not None:
            session.add_box(p.frame, p.obj_id, p.box, points=p.points, labels=p.labels)
        else:
            session.add_points(p.frame, p.obj_id, p.points, p.labels)
    for daughter, mother in prompts.parents.items():
        session.lineage.set_parent(daughter, mother)
