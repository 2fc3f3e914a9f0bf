"""Bad input in the napari tracker: each gets a napari notification and loses nothing."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")
if sys.platform.startswith("linux") and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    pytest.skip("no display: install Xvfb (apt-get install xvfb), pytest-xvfb then starts one", allow_module_level=True)

from napari_helpers import click, open_tracker, set_frame, start, wait  # noqa: E402


def _errors():
    from napari.utils.notifications import notification_manager

    return [str(n.message) for n in notification_manager.records]


def test_manifest_contributions_and_no_qt_on_import():
    import subprocess
    import sys

    code = ("import sys, napari_plugin, napari_plugin._image, napari_plugin._settings; "
            "print(any(m.split('.')[0] in ('napari', 'PyQt6', 'qtpy', 'magicgui') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
    import npe2

    pm = npe2.PluginManager.instance()
    pm.discover()
    c = pm.get_manifest("sam2-plugins").contributions
    assert [w.display_name for w in c.widgets] == ["SAM 2 tracker"]
    assert c.sample_data and c.readers[0].filename_patterns == ["*.sam2session"]
    assert set(c.configurations["tracker"].properties) == {"model", "device", "cache_folder"}


def test_docked_widget_stretches_and_scrolls(make_napari_viewer, qtbot, tmp_path):
    from qtpy.QtWidgets import QScrollArea, QSizePolicy

    viewer = make_napari_viewer()
    widget = open_tracker(viewer, qtbot, tmp_path, sample=False)
    assert widget.sizePolicy().verticalPolicy() == QSizePolicy.Policy.Expanding
    scroll = widget.findChild(QScrollArea)
    assert scroll is not None and scroll.widgetResizable()
    assert scroll.widget().sizeHint().height() > 600  # all groups are there, to scroll to


def test_a_download_from_a_worker_thread_moves_the_progress_bar(make_napari_viewer, qtbot, tmp_path):
    """A first use of an official model downloads it in a worker; its bytes (reported by the core's
    progress callback from that thread) show in the widget's progress bar."""
    import threading

    viewer = make_napari_viewer()
    widget = open_tracker(viewer, qtbot, tmp_path, sample=False)
    thread = threading.Thread(target=lambda: [widget.download(done, 150) for done in (30, 90, 150)])
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: (widget.c.progress.value, widget.c.progress.max) == (150, 150), timeout=5000)


def test_no_image_a_2d_image_and_a_huge_movie_are_refused(make_napari_viewer, qtbot, tmp_path):
    import dask.array as da

    viewer = make_napari_viewer()
    widget = open_tracker(viewer, qtbot, tmp_path, sample=False)
    widget.c.start.clicked.emit()
    assert "no image layer" in widget.c.status.value and widget.tracking.session is None
    viewer.add_image(np.zeros((64, 64), np.uint16), name="one image")
    widget.c.image.value = "one image"
    widget.c.start.clicked.emit()
    assert "no time axis" in widget.c.status.value and widget.tracking.session is None
    huge = da.zeros((200_000, 4096, 4096), np.uint16, chunks=(1, 4096, 4096))  # 6.7 TB of labels
    viewer.add_image(huge, name="huge", contrast_limits=(0, 1), multiscale=False)
    widget.c.image.value = "huge"
    widget.c.start.clicked.emit()
    assert "working size" in widget.c.status.value and "GiB" in widget.c.status.value
    assert widget.tracking.session is None and any("working size" in m for m in _errors())


def test_bad_prompts_and_labels_are_refused_and_keep_the_work(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("SAM2_PLUGINS_CACHE", str(tmp_path / "models"))
    viewer = make_napari_viewer()
    widget = open_tracker(viewer, qtbot, tmp_path)
    widget.c.model.value = "sam2.1-hiera-tiny"  # an official model, not downloaded, offline
    widget.c.start.clicked.emit()
    wait(widget, qtbot)
    assert "not cached" in widget.c.status.value and widget.tracking.session is None
    widget.c.model.value = "micro-synthetic"
    start(widget, qtbot)
    assert "cpu" in widget.c.model_info.value  # the device and precision in use are shown
    click(widget, 0, 40, 40, 1)
    before = np.asarray(widget.labels.data[0]).copy()
    assert before.any()
    click(widget, 0, 500, 40, 2)  # outside the 192×192 frames
    assert "outside the image" in widget.c.status.value
    assert len(widget.points.data) == 1 and 2 not in widget.tracking.session.object_ids
    np.testing.assert_array_equal(widget.labels.data[0], before)
    viewer.add_labels(np.ones((30, 100, 100), np.uint16), name="cellpose")
    widget.c.seed_layer.value = "cellpose"
    widget.c.seed.clicked.emit()
    assert "100×100" in widget.c.status.value and widget.tracking.session.object_ids == [1]
    widget.c.session_file.value = tmp_path / "kept.sam2session"
    widget.c.save.clicked.emit()
    layers = viewer.open(tmp_path / "kept.sam2session", plugin="sam2-plugins")  # the reader
    np.testing.assert_array_equal(layers[0].data[0], before)
    widget.points.selected_data = {0}
    widget.points.remove_selected()  # the object's only click deleted: the object goes
    assert widget.tracking.session.object_ids == [] and not np.asarray(widget.labels.data).any()


def test_deleting_the_results_layer_while_propagating_loses_nothing(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    widget = open_tracker(viewer, qtbot, tmp_path)
    start(widget, qtbot)
    set_frame(viewer, 0)
    click(widget, 0, 40, 40, 1)
    widget.c.divisions.value = False
    widget.c.direction.value = "forward from this frame"
    widget.c.propagate.clicked.emit()
    widget.worker.yielded.connect(
        lambda item: item[2] == 3 and "SAM 2 labels" in viewer.layers and viewer.layers.remove("SAM 2 labels"))
    wait(widget, qtbot)
    assert any("was removed while tracking" in m for m in _errors())
    labels = viewer.layers["SAM 2 labels"].data  # back, with every frame the session tracked
    assert widget.tracking.session.results.frames() == list(range(30))
    np.testing.assert_array_equal(labels, widget.tracking.labels())
    assert labels[29].any()


def test_layouts_channels_and_lazy_layers_give_the_frames_tracked():
    import dask.array as da
    from napari.layers import Image
    from napari_plugin._image import AXES, ImageError, layer_frames

    ctyx = da.random.randint(0, 4000, size=(2, 5, 32, 40), chunks=(1, 1, 32, 40)).astype(np.uint16)
    frames = layer_frames(Image(ctyx), AXES[2], channels=(1,))
    assert frames.shape == (5, 32, 40) and isinstance(frames.data, da.Array)  # still lazy
    np.testing.assert_array_equal(np.asarray(frames.data[3])[..., 1], np.asarray(ctyx[1, 3]))
    with pytest.raises(ImageError, match="channel 2 does not exist"):
        layer_frames(Image(ctyx), AXES[2], channels=(2,))
    small = layer_frames(Image(np.zeros((4, 64, 48), np.uint16), scale=(1, 0.5, 0.5)), AXES[3], bin=2)
    assert small.shape == (4, 32, 24) and small.scale == (1.0, 1.0, 1.0)  # overlays the image exactly
