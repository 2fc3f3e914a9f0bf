"""The model work behind the page, as functions of plain data (a frames file, prompts) to arrays.

The model is loaded once per process and kept; a session never owns it. Every function here
takes what it needs as arguments and returns numpy arrays or file paths -- no CUDA tensor leaves
it -- so on a ZeroGPU Space each one can run under ``spaces.GPU`` (applied only when the
``spaces`` package is importable). Tracking builds its video session from the prompts each time;
encoder features are kept in the visitor's folder, so tracking again encodes nothing twice.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

import numpy as np

from sam2_plugins import load_model
from sam2_plugins.api import OFFICIAL_MODEL_NAMES

from .workspace import FramePrompt

DEFAULT_MODEL = "micro-synthetic"
MODEL_CHOICES = (DEFAULT_MODEL, *OFFICIAL_MODEL_NAMES)

_models: dict[str, object] = {}
_models_lock = threading.Lock()


def _spaces():
    try:
        import spaces  # type: ignore[import-not-found]
    except ImportError:
        return None
    return spaces


ON_ZEROGPU = _spaces() is not None  # calls then run in another process: no live progress or Stop


def gpu(duration: int | Callable = 60):
    """``spaces.GPU(duration=...)`` when the ``spaces`` package is there (a ZeroGPU Space); elsewhere
    the function unchanged."""
    spaces = _spaces()
    if spaces is None:
        return lambda fn: fn
    return spaces.GPU(duration=duration)


def get_model(name: str):
    """The model called `name` (one of :data:`MODEL_CHOICES`), loaded on first use and kept."""
    if name not in MODEL_CHOICES:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_CHOICES)}")
    with _models_lock:
        if name not in _models:
            _models[name] = load_model(name)  # a GPU when there is one, else the CPU
        return _models[name]


def _frames(frames_path: Path) -> np.ndarray:
    return np.load(frames_path, mmap_mode="r")


@gpu(duration=20)
def predict_mask(model_name: str, frames_path: Path, frame: int, prompt: FramePrompt) -> np.ndarray:
    """The object's (H, W) bool mask on one frame from its clicks and/or box there."""
    if prompt.mask is not None:
        return np.asarray(prompt.mask, bool)
    model = get_model(model_name)
    image = np.ascontiguousarray(_frames(frames_path)[frame])
    pred = model.predict_image(
        image,
        points=[list(p) for p in prompt.points] or None,
        labels=list(prompt.labels) or None,
        box=list(prompt.box) if prompt.box is not None else None,
    )
    return np.asarray(pred.masks[0], bool)


@gpu(duration=60)
def segment_everything(model_name: str, frames_path: Path, frame: int, max_count: int) -> list[np.ndarray]:
    """Up to `max_count` masks of distinct objects on one frame, largest first (no overlaps)."""
    from sam2_plugins.automask import AutoMaskSettings

    model = get_model(model_name)
    image = np.ascontiguousarray(_frames(frames_path)[frame])
    # the cells preset with overlapping objects allowed suits the bundled model; Meta's defaults suit Meta's
    settings = (AutoMaskSettings.for_cells(box_nms_thresh=0.7) if model_name == DEFAULT_MODEL
                else AutoMaskSettings(points_per_side=16))
    found = sorted(model.generate_masks(image, settings), key=lambda m: -m.predicted_iou)
    taken = np.zeros(image.shape[:2], bool)
    masks = []
    for m in found:
        own = m.mask & ~taken
        if own.sum() < max(16, 0.5 * m.area):  # mostly under a better mask: the same object again
            continue
        masks.append(own)
        taken |= own
    masks.sort(key=lambda m: -int(m.sum()))
    return masks[:max_count]


@gpu(duration=120)
def track(model_name: str, frames_path: Path, num_frames: int, prompts: dict[int, dict[int, FramePrompt]],
          both_ways: bool, labels_path: Path, feature_dir: Path,
          progress: Callable[[int, int], None] | None = None, cancel=None) -> int:
    """Track every prompted object through the clip; write a (T, H, W) uint16 label stack to
    `labels_path` frame by frame (a stopped run keeps what it did). Returns the frames tracked.

    `both_ways`: forward from the earliest prompt, then backward to the first frame; else forward only.
    """
    if not prompts:
        raise ValueError("no object has a click yet: click on an object first")
    model = get_model(model_name)
    frames = _frames(frames_path)[:num_frames]
    h, w = frames.shape[1:3]
    labels = np.lib.format.open_memmap(labels_path, mode="w+", dtype=np.uint16, shape=(num_frames, h, w))
    feature_dir.mkdir(exist_ok=True)
    session = model.open_video(frames, feature_dir=feature_dir, feature_cache_mb=64, memory_mb=64)
    done = 0
    try:
        for oid, by_frame in prompts.items():
            for f, p in sorted(by_frame.items()):
                if p.mask is not None:
                    session.add_mask(f, oid, p.mask)
                elif p.box is not None:
                    session.add_box(f, oid, list(p.box), points=[list(q) for q in p.points] or None,
                                    labels=list(p.labels) or None)
                else:
                    session.add_points(f, oid, [list(q) for q in p.points], list(p.labels))
        if both_ways:
            results = session.propagate_all(progress=progress, cancel=cancel)
        else:
            results = session.propagate(progress=progress, cancel=cancel)
        for result in results:
            labels[result.frame_index] = result.labels()
            done += 1
    finally:
        labels.flush()
        del labels
        session.close()
    return done

