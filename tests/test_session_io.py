"""Session save/restore: hours of clicking survive a restart."""

import numpy as np
import pytest

from conftest import LOGIT_TOL
from sam2_plugins.video import load_session, save_session


def test_save_load_keeps_prompts_and_masks_and_propagation_continues(micro_model, reference, tmp_path):
    frames = reference["frames"]
    s = micro_model.open_video(frames)
    s.add_points(0, 1, [[35, 30]], [1])
    s.add_box(0, 2, [80, 50, 110, 80])
    list(s.propagate())
    s.add_points(5, 1, [[80, 57], [55, 40]], [1, 0])  # a correction not yet propagated
    s.add_mask(9, 3, reference["inputs/last_frame_disc2_mask"])
    path = save_session(s, tmp_path / "work.sam2session")

    r = load_session(path, micro_model, frames)
    assert r.object_ids == s.object_ids
    for oid in s.object_ids:
        assert sorted(r.tracks[oid].points) == sorted(s.tracks[oid].points)
        for f, p in s.tracks[oid].points.items():
            np.testing.assert_array_equal(r.tracks[oid].points[f].coords, p.coords)
            np.testing.assert_array_equal(r.tracks[oid].points[f].labels, p.labels)
    np.testing.assert_array_equal(r.labels(), s.labels())
    for f in range(10):
        for oid in s.object_ids:
            a, b = s.mask(f, oid), r.mask(f, oid)
            assert (a is None) == (b is None) and (a is None or np.array_equal(a, b))
    original = {x.frame_index: x.logits for x in s.propagate()}
    restored = {x.frame_index: x.logits for x in r.propagate()}
    for f in original:
        np.testing.assert_allclose(restored[f], original[f], atol=LOGIT_TOL)


def test_load_rejects_other_files_and_other_videos(micro_model, reference, tmp_path):
    s = micro_model.open_video(reference["frames"])
    s.add_points(0, 1, [[35, 30]], [1])
    path = save_session(s, tmp_path / "a.sam2session")
    with pytest.raises(ValueError, match="belongs to a video of 10 frames"):
        load_session(path, micro_model, reference["frames"][:5])
    junk = tmp_path / "junk.sam2session"
    junk.write_text("not a zip")
    with pytest.raises(ValueError, match="not a readable sam2-plugins session"):
        load_session(junk, micro_model, reference["frames"])


def test_interrupted_save_keeps_the_previous_file(micro_model, reference, tmp_path, monkeypatch):
    s = micro_model.open_video(reference["frames"])
    s.add_points(0, 1, [[35, 30]], [1])
    path = save_session(s, tmp_path / "a.sam2session")
    before = path.read_bytes()
    s.add_points(3, 2, [[60, 40]], [1])
    import sam2_plugins.exports._atomic as atomic

    def crash(*a, **k):
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(atomic.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        save_session(s, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.sam2session"]


def test_the_non_overlap_rule_is_saved_with_the_session(micro_model, reference, tmp_path):
    frames = reference["frames"]

    def prompted(**options):
        s = micro_model.open_video(frames, **options)
        s.add_points(0, 1, [[35, 30]], [1])
        s.add_box(0, 2, [20, 15, 110, 80])  # overlaps object 1
        return s

    s = prompted(non_overlap_memory=True)
    path = save_session(s, tmp_path / "rule.sam2session")
    with_rule = {x.frame_index: x.logits for x in s.propagate()}
    without_rule = {x.frame_index: x.logits for x in prompted().propagate()}
    assert any(np.abs(with_rule[f] - without_rule[f]).max() > 0.1 for f in with_rule)  # the rule matters here
    restored = {x.frame_index: x.logits for x in load_session(path, micro_model, frames).propagate()}
    for f in with_rule:
        np.testing.assert_allclose(restored[f], with_rule[f], atol=LOGIT_TOL)
