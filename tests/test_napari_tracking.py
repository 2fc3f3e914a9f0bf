"""The napari tracker in a real viewer (pytest-qt, Xvfb): the sample tracked from clicks, scored
against the generator's truth; divisions in the Tracks layer and the CTC export; cancel and
resume; the feature cache on reopening."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")
if sys.platform.startswith("linux") and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    pytest.skip("no display: install Xvfb (apt-get install xvfb), pytest-xvfb then starts one", allow_module_level=True)

from napari_helpers import click, click_every_cell, mean_jaccard, open_tracker, sample_lapse, start, wait  # noqa: E402


def test_clicks_then_propagation_track_the_sample(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    widget = open_tracker(viewer, qtbot, tmp_path)
    start(widget, qtbot)
    lapse = sample_lapse()
    click_every_cell(widget, lapse)
    assert set(np.unique(widget.labels.data[0])) - {0} == set(range(1, 9))  # shown at once
    assert viewer.layers.selection.active.name == "SAM 2 clicks"  # the next click still adds a point
    widget.c.propagate.clicked.emit()
    wait(widget, qtbot)
    labels = np.asarray(viewer.layers["SAM 2 labels"].data)
    assert labels.shape == lapse.labels.shape
    assert mean_jaccard(labels, lapse.labels) >= 0.65  # measured 0.716 (cell 9 enters unprompted: 0 there)
    tracks = viewer.layers["SAM 2 lineage"]
    assert set(np.unique(tracks.data[:, 0]).astype(int)) >= set(range(1, 9))


def _run(widget, qtbot, *, direction="whole movie", divisions=True, cancel_after=None):
    widget.c.direction.value = direction
    widget.c.divisions.value = divisions
    widget.c.propagate.clicked.emit()
    if cancel_after is not None:
        widget.worker.yielded.connect(lambda item: item[2] >= cancel_after and widget.c.cancel.clicked.emit())
    wait(widget, qtbot)


def test_marked_and_detected_divisions_reach_the_tracks_layer_and_the_ctc_export(make_napari_viewer, qtbot, tmp_path):
    from ctc_metrics import evaluate_sequence
    from napari_helpers import eval_lineage, set_frame
    from sam2_plugins.exports import track_segments
    from sam2_plugins.sample import interior_point

    viewer = make_napari_viewer()
    widget = open_tracker(viewer, qtbot, tmp_path / "cache")
    start(widget, qtbot)
    lapse = sample_lapse()
    click_every_cell(widget, lapse)
    _run(widget, qtbot)  # the automatic detection finds cell 2's division (truth: frame 19)
    detected = {d: m for d, m in widget.tracking.parents().items()}
    assert sorted(detected.values()) == [2, 2]
    # cell 1 divides on frame 11 (truth): the user marks it with one click in each daughter
    set_frame(viewer, 11)
    widget.c.division_clicks.value = True
    for daughter in (10, 11):
        x, y = interior_point(lapse.labels[11] == daughter)
        widget.points.add([[11, y, x]])
    widget.labels.selected_label = 1
    widget.c.mark_division.clicked.emit()
    assert sorted(widget.tracking.parents().values()) == [1, 1, 2, 2], widget.c.status.value
    _run(widget, qtbot, divisions=False)  # re-track with the marked division, no new detection
    parents = widget.tracking.parents()
    assert sorted(parents.values()) == [1, 1, 2, 2]
    tracks = viewer.layers["SAM 2 lineage"]
    segments = track_segments(np.asarray(viewer.layers["SAM 2 labels"].data), parents)
    object_of = {seg.label: seg.source_id for seg in segments.tracks}  # a gap starts a new segment
    assert all(object_of[tracks.graph[d][0]] == m for d, m in parents.items()), (tracks.graph, parents)
    daughters_of_1 = [d for d, m in parents.items() if m == 1]
    first_frames = [int(tracks.data[tracks.data[:, 0] == d][:, 1].min()) for d in daughters_of_1]
    assert first_frames == [11, 11]
    # the CTC export, scored with py-ctcmetrics against the generator's truth
    widget.c.export_folder.value = tmp_path / "out"
    widget.c.export.clicked.emit()
    res = tmp_path / "out" / "ctc"
    assert (res / "res_track.txt").is_file(), widget.c.status.value
    rows = np.loadtxt(res / "res_track.txt", dtype=int, ndmin=2)
    assert sorted(rows[rows[:, 3] > 0][:, 3].tolist()).count(1) == 2  # two daughters of 1 in res_track.txt
    for name in ("labels.tif", "tracks.csv", "tracks.geff"):
        assert (tmp_path / "out" / name).exists()
    gt = eval_lineage().write_gt(tmp_path / "GT", lapse)
    scores = evaluate_sequence(res=str(res), gt=str(gt), metrics=["DET", "TRA"], threads=1)
    assert scores["TRA"] >= 0.8 and scores["DET"] >= 0.8, scores  # measured 0.858 and 0.864


def test_cancel_keeps_frames_resume_finishes_and_reopening_encodes_nothing(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    widget = open_tracker(viewer, qtbot, tmp_path / "cache")
    start(widget, qtbot)
    lapse = sample_lapse()
    click_every_cell(widget, lapse)
    clicked = np.asarray(widget.points.data).copy()
    _run(widget, qtbot, divisions=False, cancel_after=6)
    labels = np.asarray(viewer.layers["SAM 2 labels"].data).copy()
    tracked = [t for t in range(30) if labels[t].any()]
    assert 6 <= len(tracked) < 30 and "cancelled" in widget.c.status.value  # finished frames kept
    _run(widget, qtbot, divisions=False)  # goes on where it stopped
    after = np.asarray(viewer.layers["SAM 2 labels"].data)
    assert all(after[t].any() for t in range(30))
    assert widget.c.progress.value == 30 - len(tracked)  # only the frames left were tracked
    np.testing.assert_array_equal(after[tracked], labels[tracked])
    assert widget.tracking.session.feature_counts["encoded"] == 30
    # the same movie opened again: the autosave is offered, and restores the tracked movie
    start(widget, qtbot)
    assert "autosave" in widget.c.status.value and widget.tracking.session.object_ids == []
    widget.c.load.clicked.emit()
    np.testing.assert_array_equal(viewer.layers["SAM 2 labels"].data, after)
    # ... and its clicks are drawn again where they were made
    restored = np.asarray(widget.points.data)
    np.testing.assert_allclose(restored[np.lexsort(restored.T)], clicked[np.lexsort(clicked.T)], atol=1e-3)
    # every frame's features come from the cache folder
    click_every_cell(widget, lapse)
    _run(widget, qtbot, divisions=False)
    assert widget.tracking.session.feature_counts == {"encoded": 0, "loaded": 30}
    assert np.asarray(viewer.layers["SAM 2 labels"].data)[29].any()


def test_a_painted_cell_becomes_an_object_that_propagation_follows(make_napari_viewer, qtbot, tmp_path):
    from napari_helpers import set_frame
    from sam2_plugins.sample import interior_point

    viewer = make_napari_viewer()
    widget = open_tracker(viewer, qtbot, tmp_path)
    start(widget, qtbot)
    lapse = sample_lapse()
    set_frame(viewer, 0)
    x, y = interior_point(lapse.labels[0] == 3)
    layer = widget.labels
    layer.brush_size = 14
    layer.paint((0, round(y), round(x)), 20)  # a brush stroke as the paint tool makes it
    assert widget.tracking.painted == {0}
    _run(widget, qtbot, direction="forward from this frame", divisions=False)
    assert widget.tracking.session.object_ids == [20]
    truth, ours = lapse.labels[10] == 3, np.asarray(viewer.layers["SAM 2 labels"].data[10]) == 20
    assert (truth & ours).sum() / (truth | ours).sum() >= 0.6  # the painted cell, followed to frame 10


def test_a_two_channel_ctyx_layer_is_tracked_on_the_chosen_channel(make_napari_viewer, qtbot, tmp_path):
    from sam2_plugins.sample import interior_point

    viewer = make_napari_viewer()
    lapse = sample_lapse()
    noise = np.random.default_rng(0).integers(0, 60000, lapse.frames.shape, dtype=np.uint16)
    viewer.add_image(np.stack([noise, lapse.frames]), name="two colours")  # C×T×Y×X, cells in channel 1
    widget = open_tracker(viewer, qtbot, tmp_path, sample=False)
    widget.c.image.value = "two colours"
    assert widget.c.axes.value == "C×T×Y×X"
    widget.c.channels.value = "1"
    start(widget, qtbot)
    assert widget.tracking.shape == (30, 192, 192)
    viewer.dims.set_current_step(1, 5)  # the viewer's axes: c, t, y, x
    x, y = interior_point(lapse.labels[5] == 4)
    click(widget, widget.current_frame(), x, y, 4)
    assert widget.current_frame() == 5
    truth, ours = lapse.labels[5] == 4, np.asarray(widget.labels.data[5]) == 4
    assert (truth & ours).sum() / (truth | ours).sum() >= 0.7
