"""Remake the napari screenshots in docs/images (run under a display, e.g. Xvfb):

    xvfb-run -a -s "-screen 0 1400x1000x24" python -m napari_plugin._screenshots [docs/images]

The sample is opened, every cell of frame 0 clicked once, the movie propagated with division
detection, and the window captured with the widget docked.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path


def _wait(widget, app, timeout=300.0):
    end = time.monotonic() + timeout
    while widget.worker is not None and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def main(folder: str = "docs/images") -> None:
    import napari
    import numpy as np
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QApplication
    from sam2_plugins.sample import SAMPLE_SEED, SAMPLE_SHAPE, clicks_for_labels
    from sam2_plugins.synthetic import make_timelapse

    from ._settings import TrackerSettings

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1500, 1000)
    app = QApplication.instance()
    viewer.open_sample("sam2-plugins", "dividing_cells")
    dock, widget = viewer.window.add_plugin_dock_widget("sam2-plugins", "SAM 2 tracker")
    viewer.window._qt_window.resizeDocks([dock], [430], Qt.Orientation.Horizontal)  # room for the controls
    widget.tracking.settings = TrackerSettings(device="cpu", cache_folder=tempfile.mkdtemp())
    widget.c.device.value = "cpu"
    widget.c.start.clicked.emit()
    _wait(widget, app)
    lapse = make_timelapse(SAMPLE_SEED, dtype=np.uint16, **SAMPLE_SHAPE)
    viewer.dims.set_current_step(0, 0)
    for entry in clicks_for_labels(lapse.labels, 0):
        (x, y), = entry["points"]
        widget.labels.selected_label = entry["id"]
        widget.points.add([[0, y, x]])
    viewer.reset_view()
    app.processEvents()
    viewer.screenshot(str(out / "napari_clicks.png"), canvas_only=False)
    widget.c.new_cells.value = 5  # cells that enter later get tracks too
    widget.c.propagate.clicked.emit()
    _wait(widget, app)
    viewer.dims.set_current_step(0, 24)
    viewer.layers.selection.active = viewer.layers["SAM 2 lineage"]
    for _ in range(20):
        app.processEvents()
    viewer.screenshot(str(out / "napari_tracked.png"), canvas_only=False)
    viewer.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
