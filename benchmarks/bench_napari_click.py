"""Click-to-mask time in the napari tracker against the core call it wraps, same run.

One click per cell of the shipped sample on frame 0, in a real viewer: the widget's time (point
added -> mask in the labels layer, Tracks layer refreshed, session autosaved) against the same
clicks sent straight to a core session (``session.add_points``) on the same frames. The first click
of each encodes the frame; the medians are over the other clicks. Needs a display (Xvfb):

    xvfb-run -a python benchmarks/bench_napari_click.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    import napari
    from napari_helpers import sample_lapse
    from qtpy.QtWidgets import QApplication

    from napari_plugin._settings import TrackerSettings
    from sam2_plugins import load_model
    from sam2_plugins.sample import clicks_for_labels, sample_paths

    clicks = [(e["id"], *e["points"][0]) for e in clicks_for_labels(sample_lapse().labels, 0)]
    viewer = napari.Viewer(show=False)
    viewer.open_sample("sam2-plugins", "dividing_cells")
    _, widget = viewer.window.add_plugin_dock_widget("sam2-plugins", "SAM 2 tracker")
    widget.tracking.settings = TrackerSettings(device="cpu", cache_folder=tempfile.mkdtemp())
    widget.c.device.value = "cpu"
    widget.c.start.clicked.emit()
    app = QApplication.instance()
    while widget.worker is not None:
        app.processEvents()
        time.sleep(0.01)
    ours = []
    for oid, x, y in clicks:
        widget.labels.selected_label = oid
        t0 = time.perf_counter()
        widget.points.add([[0, y, x]])
        app.processEvents()
        ours.append(time.perf_counter() - t0)
    viewer.close()

    session = load_model("micro-synthetic", device="cpu").open_video(str(sample_paths()[0]))
    core = []
    for oid, x, y in clicks:
        t0 = time.perf_counter()
        session.add_points(0, oid, [[x, y]], [1])
        core.append(time.perf_counter() - t0)
    w, c = float(np.median(ours[1:])), float(np.median(core[1:]))
    print(f"{len(clicks)} clicks on frame 0 of the sample, micro-synthetic on the CPU")
    print(f"napari widget: first {ours[0]:.3f} s, median of the rest {w:.3f} s")
    print(f"core session:  first {core[0]:.3f} s, median of the rest {c:.3f} s")
    print(f"widget / core (median): {w / c:.2f}x")


if __name__ == "__main__":
    main()
