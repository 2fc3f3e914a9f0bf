"""Bad input to a video session: a clear message, and the session exactly as it was."""

import numpy as np
import pytest


@pytest.fixture()
def session(micro_model, reference):
    s = micro_model.open_video(reference["frames"])
    s.add_points(0, 1, [[35, 30]], [1])
    list(s.propagate(max_frames=3))
    return s


def _snapshot(s):
    return (
        s.object_ids,
        {oid: (sorted(t.points), sorted(t.masks), sorted(t.cond), sorted(t.pending), dict(t.tracked))
         for oid, t in s.tracks.items()},
        s.results.frames(),
        s.labels().copy(),
    )


def _same(a, b):
    assert a[:3] == b[:3]
    np.testing.assert_array_equal(a[3], b[3])


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda s: s.add_points(10, 1, [[35, 30]], [1]), IndexError, "frame 10 is out of range for a video of 10 frames"),
        (lambda s: s.add_points(-1, 1, [[35, 30]], [1]), IndexError, "frame -1 is out of range"),
        (lambda s: s.add_points(2, 1, [[500, 30]], [1]), ValueError, "outside the image"),
        (lambda s: s.add_points(2, 1, [[5, 30]], [1, 0]), ValueError, "1 points but 2 labels"),
        (lambda s: s.add_points(2, 1, [], []), ValueError, "no points"),
        (lambda s: s.add_box(2, 3, [50, 10, 20, 40]), ValueError, "x1 < x0"),
        (lambda s: s.add_mask(2, 3, np.ones((50, 50), bool)), ValueError, "mask has shape"),
        (lambda s: s.add_points(2, -4, [[5, 30]], [1]), ValueError, "object ids"),
        (lambda s: s.remove_object(9), KeyError, "unknown object id 9"),
        (lambda s: s.clear_prompts(obj_id=9), KeyError, "unknown object id 9"),
        (lambda s: s.mask(2, 9), KeyError, "unknown object id 9"),
        (lambda s: list(s.propagate(start=12)), IndexError, "frame 12 is out of range"),
        (lambda s: list(s.propagate(max_frames=-2)), ValueError, "max_frames"),
    ],
)
def test_bad_calls_leave_the_session_unchanged(session, call, error, message):
    before = _snapshot(session)
    with pytest.raises(error, match=message):
        call(session)
    _same(before, _snapshot(session))
    # and the session keeps working
    assert len(list(session.propagate())) == 10


def test_propagate_before_any_prompt(micro_model, reference):
    s = micro_model.open_video(reference["frames"])
    with pytest.raises(RuntimeError, match="add points, a box or a mask"):
        list(s.propagate())


def test_nan_frame_fails_the_prompt_and_nothing_is_recorded(micro_model, reference):
    frames = reference["frames"].astype(np.float32) / 255
    frames[3, 10, 10, 0] = np.nan
    from sam2_plugins.intensity import fit_normalizer

    norm = fit_normalizer([frames[0]], frames.dtype)
    s = micro_model.open_video(frames, normalizer=norm)
    s.add_points(0, 1, [[35, 30]], [1])
    before = _snapshot(s)
    with pytest.raises(ValueError, match="frame 3 contains NaN or infinite"):
        s.add_points(3, 2, [[35, 30]], [1])
    _same(before, _snapshot(s))
    with pytest.raises(ValueError, match="frame 3 contains NaN or infinite"):
        list(s.propagate())
    assert s.mask(2, 1) is not None  # frames before the bad one were tracked and kept


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda tmp: np.zeros((0, 10, 10), np.uint8), "no frames|0 frames|empty"),
        (lambda tmp: np.zeros((3, 0, 10), np.uint8), "zero|0x10|size"),
        (lambda tmp: (tmp / "notes.mp4").write_text("hello") and str(tmp / "notes.mp4"), "not a readable video"),
        (lambda tmp: str(tmp / "missing.mp4"), "missing.mp4"),
        (lambda tmp: (tmp / "empty_dir").mkdir() or str(tmp / "empty_dir"), "empty_dir"),
    ],
)
def test_unreadable_videos_are_reported_clearly(micro_model, tmp_path, make, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        micro_model.open_video(make(tmp_path))
