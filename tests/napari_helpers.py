"""Shared steps of the napari plugin tests: a real viewer with the tracker docked on the sample."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def sample_lapse():
    """The generator's truth for the shipped sample (labels and lineage)."""
    from sam2_plugins.sample import SAMPLE_SEED, SAMPLE_SHAPE
    from sam2_plugins.synthetic import make_timelapse

    return make_timelapse(SAMPLE_SEED, dtype=np.uint16, **SAMPLE_SHAPE)


def open_tracker(viewer, qtbot, cache, *, sample=True):
    """Dock the widget as napari does (from the manifest), with its cache in ``cache``."""
    from napari_plugin._settings import TrackerSettings

    if sample:
        viewer.open_sample("sam2-plugins", "dividing_cells")
    _, widget = viewer.window.add_plugin_dock_widget("sam2-plugins", "SAM 2 tracker")
    widget.tracking.settings = TrackerSettings(model="micro-synthetic", device="cpu", cache_folder=str(cache))
    widget.c.device.value = "cpu"
    return widget


def wait(widget, qtbot, timeout=120_000):
    qtbot.waitUntil(lambda: widget.worker is None, timeout=timeout)


def start(widget, qtbot):
    widget.c.start.clicked.emit()
    wait(widget, qtbot)
    assert widget.tracking.session is not None, widget.c.status.value


def set_frame(viewer, frame: int) -> None:
    viewer.dims.set_current_step(0, frame)


def click(widget, frame: int, x: float, y: float, obj: int, positive: bool = True) -> None:
    """A click as napari records it in add mode: a point added to the clicks layer."""
    widget.labels.selected_label = obj
    widget.c.negative.value = not positive
    widget.points.add([[frame, y, x]])


def click_every_cell(widget, lapse, frame: int = 0) -> None:
    from sam2_plugins.sample import clicks_for_labels

    for entry in clicks_for_labels(lapse.labels, frame):
        (x, y), = entry["points"]
        click(widget, frame, x, y, entry["id"])


def mean_jaccard(labels: np.ndarray, truth: np.ndarray) -> float:
    """Mean over (frame, true cell) of the IoU with the result object that overlaps it most."""
    scores = []
    for t in range(truth.shape[0]):
        for k in np.unique(truth[t]):
            if k == 0:
                continue
            cell = truth[t] == k
            ids, counts = np.unique(labels[t][cell], return_counts=True)
            best = 0.0
            for i in ids[ids > 0]:
                pred = labels[t] == i
                best = max(best, (cell & pred).sum() / (cell | pred).sum())
            scores.append(best)
    return float(np.mean(scores))


def eval_lineage():
    """benchmarks/eval_lineage.py as a module: the project's CTC ground truth writer and scorer."""
    spec = importlib.util.spec_from_file_location("eval_lineage", ROOT / "benchmarks" / "eval_lineage.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
