"""Encoder features on disk (``open_video(..., feature_dir=...)``): a movie opened again is not encoded
again, the results do not change, and the cache never costs the user work."""

from __future__ import annotations

import numpy as np
import pytest

from sam2_plugins import load_model
from sam2_plugins.sample import interior_point
from sam2_plugins.synthetic import make_timelapse
from sam2_plugins.video import feature_store


@pytest.fixture(scope="module")
def model():
    return load_model("micro-synthetic", device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def movie():
    return make_timelapse(7, num_frames=8, height=96, width=96, num_cells=3, dtype=np.uint16)


def _click(movie):
    first = movie.labels[0]
    return interior_point(first == np.unique(first[first > 0])[0])


def _track(model, frames, feature_dir, click=None, **options):
    session = model.open_video(frames, feature_dir=feature_dir, **options)
    session.add_points(0, obj_id=1, points=[click or [48, 48]], labels=[1])
    list(session.propagate_all())
    return session


def test_reopened_movie_is_not_encoded_again_and_tracks_the_same(model, movie, tmp_path):
    fresh = _track(model, movie.frames, None)
    assert fresh.feature_counts == {"encoded": 8, "loaded": 0}

    first = _track(model, movie.frames, tmp_path)
    assert first.feature_counts == {"encoded": 8, "loaded": 0}
    again = _track(model, movie.frames, tmp_path)
    assert again.feature_counts == {"encoded": 0, "loaded": 8}
    # the same frames as another array object (a file read again) are found by content
    copy = _track(model, movie.frames.copy(), tmp_path)
    assert copy.feature_counts == {"encoded": 0, "loaded": 8}
    np.testing.assert_array_equal(again.labels(), fresh.labels())
    np.testing.assert_array_equal(first.labels(), fresh.labels())
    assert first.feature_store.nbytes() > 0


def test_other_pixels_or_model_settings_are_encoded_anew(model, movie, tmp_path):
    _track(model, movie.frames, tmp_path)
    # a different intensity stretch changes what the encoder sees: every frame is new
    from sam2_plugins.intensity import fit_normalizer

    wider = fit_normalizer(list(movie.frames[:2]), movie.frames.dtype, "minmax")
    assert _track(model, movie.frames, tmp_path, normalizer=wider).feature_counts["encoded"] == 8
    edited = movie.frames.copy()
    edited[3] = edited[3] // 2 + 5  # one frame changed on disk (the same intensity stretch)
    session = _track(model, edited, tmp_path, normalizer=wider)
    assert session.feature_counts == {"encoded": 1, "loaded": 7}
    # another working size is another model as far as features go
    small = load_model("micro-synthetic", device="cpu", dtype="float32", image_size=128)
    assert _track(small, movie.frames, tmp_path).feature_counts == {"encoded": 8, "loaded": 0}


def test_damaged_cache_file_is_encoded_again(model, movie, tmp_path):
    reference = _track(model, movie.frames, tmp_path).labels()
    files = sorted(tmp_path.glob("*/*/*.safetensors"))
    assert len(files) == 8
    files[0].write_bytes(b"not a safetensors file")
    session = _track(model, movie.frames, tmp_path)
    assert session.feature_counts == {"encoded": 1, "loaded": 7}
    np.testing.assert_array_equal(session.labels(), reference)
    assert _track(model, movie.frames, tmp_path).feature_counts == {"encoded": 0, "loaded": 8}


def test_unusable_folder_is_refused_before_any_work(model, movie, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(PermissionError, match="feature cache folder"):
        model.open_video(movie.frames, feature_dir=blocker / "cache")


def test_a_full_disk_warns_and_tracking_goes_on(model, movie, tmp_path, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(feature_store, "save_file", disk_full)
    with pytest.warns(RuntimeWarning, match="stopped saving"):
        session = _track(model, movie.frames, tmp_path, click=_click(movie))
    assert session.feature_counts["encoded"] == 8
    assert (session.labels() == 1).any(axis=(1, 2)).all()  # the clicked cell was tracked all along
    assert not list(tmp_path.glob("*/*/*.tmp"))


def test_track_command_reuses_features_from_a_feature_dir(tmp_path):
    from sam2_plugins.cli import main

    features = tmp_path / "features"
    for run in ("first", "again"):
        assert main(["track", "sample", "--out", str(tmp_path / run), "--feature-dir", str(features),
                     "--format", "labels", "--quiet", "--no-divisions"]) == 0
    import tifffile

    first, again = (tifffile.imread(tmp_path / run / "labels.tif") for run in ("first", "again"))
    np.testing.assert_array_equal(first, again)
    assert len(list(features.glob("*/*/*.safetensors"))) == 30  # the sample's frames, each written once
