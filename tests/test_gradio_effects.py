"""The video effects of sam2_plugins.exports.effects (used by the Gradio app): what each does to the
objects and to the rest of a frame, and the effect video written from a session's labels."""

from __future__ import annotations

import numpy as np
import pytest

from sam2_plugins.exports import EFFECTS, apply_effect, object_colors, write_effect_video
from sam2_plugins.synthetic import make_scene_video


@pytest.fixture(scope="module")
def scene():
    v = make_scene_video(3, num_frames=4, height=96, width=128, num_objects=2)
    return v.frames, v.labels


def changed(a, b):
    return np.abs(a.astype(int) - b.astype(int)).max(axis=-1) > 0


def test_each_effect_keeps_objects_or_background_as_it_says(scene):
    frames, labels = scene
    img, lab = frames[1], labels[1]
    fg = lab != 0
    grey = apply_effect(img, lab, "grey_rest")
    assert (grey[fg] == img[fg]).all()
    assert (grey[~fg][:, 0] == grey[~fg][:, 1]).all() and (grey[~fg][:, 1] == grey[~fg][:, 2]).all()
    removed = apply_effect(img, lab, "remove_background", backdrop=(0, 255, 0))
    assert (removed[fg] == img[fg]).all() and (removed[~fg] == [0, 255, 0]).all()
    blurred = apply_effect(img, lab, "blur_background")
    assert (blurred[fg] == img[fg]).all() and changed(blurred, img)[~fg].mean() > 0.5
    lit = apply_effect(img, lab, "highlight", dim=0.3)
    far = ~fg
    far[:4], far[-4:], far[:, :4], far[:, -4:] = False, False, False, False
    assert lit[far & (img.max(-1) > 20)].mean() < 0.45 * img[far & (img.max(-1) > 20)].mean()
    overlay = apply_effect(img, lab, "overlay")
    assert (overlay[~fg] == img[~fg]).all() and changed(overlay, img)[fg].mean() > 0.9


def test_only_limits_an_effect_to_some_objects(scene):
    frames, labels = scene
    img, lab = frames[0], labels[0]
    out = apply_effect(img, lab, "remove_background", only=[1], backdrop=(0, 0, 0))
    assert (out[lab == 1] == img[lab == 1]).all()
    assert (out[lab == 2] == 0).all()


def test_highlight_outlines_objects_in_their_colour(scene):
    frames, labels = scene
    out = apply_effect(frames[0], labels[0], "highlight")
    colour = object_colors([1])[0]
    assert (out == colour).all(axis=-1).sum() > 20


def test_bad_requests_are_refused_by_name(scene):
    frames, labels = scene
    with pytest.raises(ValueError, match="unknown effect 'sparkle'"):
        apply_effect(frames[0], labels[0], "sparkle")
    with pytest.raises(ValueError, match="differ in size"):
        apply_effect(frames[0], labels[0][:10], "overlay")
    assert set(EFFECTS) == {"overlay", "blur_background", "remove_background", "highlight", "grey_rest"}


def test_effect_video_is_an_h264_mp4_with_every_frame(scene, tmp_path):
    import av

    frames, labels = scene
    path = write_effect_video(tmp_path / "fx.mp4", lambda i: frames[i], lambda i: labels[i], len(frames),
                              "grey_rest", fps=5)
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(stream)]
        assert stream.codec_context.name == "h264"
    assert len(decoded) == len(frames)
    expected = apply_effect(frames[2], labels[2], "grey_rest")
    assert np.abs(decoded[2].astype(int) - expected.astype(int)).mean() < 4


def test_importing_the_app_package_does_not_import_gradio():
    import subprocess
    import sys

    code = "import sys, gradio_app; assert 'gradio' not in sys.modules, 'gradio imported'; print(gradio_app.build_demo)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
