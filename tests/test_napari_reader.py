"""Opening a ``.sam2session`` file in napari (File > Open): its labels and lineage as layers."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")
if sys.platform.startswith("linux") and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    pytest.skip("no display: install Xvfb (apt-get install xvfb), pytest-xvfb then starts one", allow_module_level=True)


def test_a_session_file_opens_as_labels_and_a_lineage_tracks_layer(make_napari_viewer, tmp_path):
    from sam2_plugins import load_model, save_session
    from sam2_plugins.sample import SAMPLE_SEED, SAMPLE_SHAPE, interior_point
    from sam2_plugins.synthetic import make_timelapse

    lapse = make_timelapse(SAMPLE_SEED, dtype=np.uint16, **SAMPLE_SHAPE)
    frames = lapse.frames[:8]
    session = load_model("micro-synthetic", device="cpu").open_video(frames)
    first = lapse.labels[0]
    a, b = [int(i) for i in np.unique(first) if i][:2]
    session.add_points(0, a, [interior_point(first == a)], [1])
    list(session.propagate_all())
    session.divide(4, a, masks=[lapse.labels[4] == a, lapse.labels[4] == b])  # scripted: the lineage matters here
    list(session.propagate_all())
    path = save_session(session, tmp_path / "work.sam2session")

    viewer = make_napari_viewer()
    layers = viewer.open(str(path), plugin="sam2-plugins")
    kinds = {type(layer).__name__: layer for layer in layers}
    assert set(kinds) == {"Labels", "Tracks"}
    np.testing.assert_array_equal(kinds["Labels"].data, session.labels())
    daughters = session.lineage.parents
    assert len(daughters) == 2
    graph = kinds["Tracks"].graph
    assert len(graph) == 2 and all(len(parents) == 1 for parents in graph.values())  # both daughters: one mother
    assert len({p[0] for p in graph.values()}) == 1
