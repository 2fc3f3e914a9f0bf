"""Frame sources and intensity normalization, on small synthetic data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sam2_plugins.intensity import IntensityNormalizer, fit_normalizer
from sam2_plugins.sources import FrameEvictedError, StreamSource, VideoSource, open_source

av = pytest.importorskip("av")
tifffile = pytest.importorskip("tifffile")
Image = pytest.importorskip("PIL.Image")


# -- helpers ------------------------------------------------------------------
def _encoder() -> str:
    for name in ("libx264", "mpeg4"):
        try:
            av.codec.Codec(name, "w")
            return name
        except Exception:
            continue
    pytest.skip("PyAV has neither libx264 nor mpeg4")


def _synthetic_frame(i: int, h: int = 48, w: int = 64) -> np.ndarray:
    """Smooth, distinct frames that survive lossy coding: (H, W, 3) uint8."""
    yy, xx = np.mgrid[0:h, 0:w]
    frame = np.empty((h, w, 3), np.uint8)
    frame[..., 0] = (xx * 255 // (w - 1)).astype(np.uint8)
    frame[..., 1] = (yy * 255 // (h - 1)).astype(np.uint8)
    frame[..., 2] = np.uint8(20 * i)
    frame[:, 4 * i: 4 * i + 8, :] = 255  # a bar moving right
    return frame


def _write_video(path, frames, codec: str, gop: int = 4) -> None:
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.gop_size = gop
        if codec == "libx264":
            stream.options = {"g": str(gop), "crf": "10"}
        else:
            stream.codec_context.bit_rate = 4_000_000
        container.start_encoding()
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


class CountingArray:
    """A lazy array-like that records each access and refuses whole reads."""

    def __init__(self, data: np.ndarray) -> None:
        self._data, self.shape, self.dtype, self.ndim = data, data.shape, data.dtype, data.ndim
        self.keys: list = []

    def __getitem__(self, key):
        self.keys.append(key)
        if not isinstance(key, int) and not (isinstance(key, tuple) and any(isinstance(k, int) for k in key)):
            raise AssertionError(f"whole-array read: {key!r}")
        return self._data[key]

    def __array__(self, *args, **kwargs):
        raise AssertionError("np.asarray() on the whole lazy array")


# -- intensity ----------------------------------------------------------------
def test_uint8_reads_back_exactly_divided_by_255():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (5, 16, 20, 3), dtype=np.uint8)
    with open_source(rgb) as src:
        assert (len(src), src.height, src.width, src.channels, src.dtype) == (5, 16, 20, 3, np.uint8)
        assert src.normalizer.mode == "none"
        out = src.read(3)
        assert out.dtype == np.float32 and out.shape == (16, 20, 3)
        np.testing.assert_array_equal(out, rgb[3].astype(np.float32) / 255)
    grey = rgb[..., 0]
    out = open_source(grey).read(1)
    np.testing.assert_array_equal(out, np.repeat(grey[1, :, :, None].astype(np.float32) / 255, 3, axis=2))


def test_uint16_percentile_stretch_is_fitted_once_for_all_frames():
    ramp = np.arange(100 * 100, dtype=np.uint16).reshape(100, 100)  # values 0..9999
    frames = np.stack([ramp // 2, ramp, ramp // 2])  # frame 1 twice as bright
    src = open_source(frames)
    norm = src.normalizer
    assert norm.mode == "percentile" and len(norm.low) == 1
    values = np.concatenate([(ramp // 2).ravel()] * 2 + [ramp.ravel()]).astype(np.float64)
    assert norm.low[0] == pytest.approx(np.percentile(values, 1.0))
    assert norm.high[0] == pytest.approx(np.percentile(values, 99.8))
    expected = np.clip((ramp.astype(np.float64) - norm.low[0]) / (norm.high[0] - norm.low[0]), 0, 1)
    np.testing.assert_allclose(src.read(1)[..., 0], expected, atol=1e-6)
    dim = src.read(0)
    assert src.normalizer is norm  # no refit per frame
    # the same raw value maps to the same output in both frames: no flicker
    assert dim[60, 0, 0] == pytest.approx(src.read(1)[30, 0, 0])
    assert dim.max() < 0.6 and src.read(1).max() == 1.0


def test_minmax_constant_image_and_float_none_mode():
    with np.errstate(all="raise"):
        const = np.full((2, 8, 8), 7, np.uint16)
        out = open_source(const).read(0)
        np.testing.assert_array_equal(out, np.zeros((8, 8, 3), np.float32))
    ramp = np.linspace(-5, 5, 64, dtype=np.float32).reshape(1, 8, 8)
    norm = fit_normalizer(list(ramp), ramp.dtype, mode="minmax")
    assert (norm.low, norm.high) == ((-5.0,), (5.0,))
    out = open_source(ramp, normalizer=norm).read(0)
    assert out.min() == 0.0 and out.max() == 1.0
    unit = np.random.default_rng(1).random((2, 6, 6, 3)).astype(np.float32)
    out = open_source(unit, normalizer=IntensityNormalizer(mode="none")).read(1)
    np.testing.assert_array_equal(out, unit[1])


def test_two_and_five_channel_data():
    two = np.random.default_rng(2).integers(0, 4000, (3, 10, 12, 2), dtype=np.uint16)
    out = open_source(two).read(0)
    assert out.shape == (10, 12, 3)
    assert np.all(out[..., 2] == 0) and out[..., :2].max() > 0.9
    five = np.zeros((4, 10, 12, 5), np.uint8)
    for c in range(5):
        five[..., c] = 50 * c
    np.testing.assert_array_equal(open_source(five).read(2)[0, 0], np.float32([0, 50, 100]) / 255)
    picked = open_source(five, channels=(4, 2, 0)).read(2)
    np.testing.assert_array_equal(picked[0, 0], np.float32([200, 100, 0]) / 255)
    with pytest.raises(ValueError, match="channel index 7 is out of range for data with 5 channel"):
        open_source(five, channels=(7, 0, 1))


def test_normalizer_round_trips_through_a_plain_dict():
    frames = [np.random.default_rng(3).normal(100, 10, (8, 8, 4)).astype(np.float32)]
    norm = fit_normalizer(frames, np.float32, low_percentile=2, high_percentile=98, channels=[3, 1, 0])
    restored = IntensityNormalizer.from_dict(json.loads(json.dumps(norm.to_dict())))
    assert restored == norm
    np.testing.assert_array_equal(restored.apply(frames[0]), norm.apply(frames[0]))
    with pytest.raises(ValueError, match="unknown normalization mode"):
        IntensityNormalizer(mode="gamma")


def test_nan_is_reported_with_its_frame_index():
    data = np.random.default_rng(4).random((6, 8, 8)).astype(np.float32)
    data[3, 2, 2] = np.nan
    src = open_source(data, normalizer=IntensityNormalizer(mode="none"))
    src.read(2)
    with pytest.raises(ValueError, match="frame 3 contains NaN or infinite values"):
        src.read(3)
    data[3, 2, 2] = np.inf
    with pytest.raises(ValueError, match="frame 3 contains NaN or infinite values"):
        open_source(data).read(0)  # caught while fitting the normalizer


# -- arrays, lists, streams ---------------------------------------------------
def test_lazy_array_like_is_read_one_frame_at_a_time():
    data = np.random.default_rng(5).integers(0, 60000, (40, 16, 16), dtype=np.uint16)
    lazy = CountingArray(data)
    src = open_source(lazy)
    assert len(src) == 40 and src.dtype == np.uint16 and not lazy.keys
    out = src.read(25)
    assert out.shape == (16, 16, 3)
    assert len(lazy.keys) <= 17  # 16 sample frames for the fit + the frame itself
    np.testing.assert_array_equal(src.read_raw(25), data[25])


def test_time_axis_single_image_and_list_of_frames():
    stack = np.random.default_rng(6).integers(0, 255, (16, 12, 7), dtype=np.uint8)  # (H, W, T)
    src = open_source(stack, time_axis=-1)
    assert (len(src), src.height, src.width) == (7, 16, 12)
    np.testing.assert_array_equal(src.read_raw(5), stack[:, :, 5])
    single = open_source(stack[:, :, 0])
    assert len(single) == 1 and single.read(0).shape == (16, 12, 3)
    frames = [stack[..., k] for k in range(3)]
    src = open_source(frames)
    assert len(src) == 3
    np.testing.assert_array_equal(src.read_raw(2), frames[2])
    with pytest.raises(ValueError, match="frame 1 of the list has shape"):
        open_source([frames[0], frames[1][:5]])


def test_stream_source_keeps_only_the_last_frames():
    stream = StreamSource(max_frames_kept=8)
    assert len(stream) == 0
    for k in range(20):
        assert stream.append(np.full((4, 5), k, np.uint8)) == k
    assert len(stream) == 20 and stream.frame_shape == (4, 5)
    assert stream.read(19)[0, 0, 0] == pytest.approx(19 / 255)
    assert stream.read_raw(12)[0, 0] == 12
    with pytest.raises(FrameEvictedError, match="frame 11 is no longer available.*last 8 frames"):
        stream.read(11)
    with pytest.raises(ValueError, match="shape"):
        stream.append(np.zeros((4, 6), np.uint8))
    with pytest.raises(IndexError, match="frame 20 is out of range"):
        stream.read(20)


# -- files --------------------------------------------------------------------
def test_multipage_tiff_stack(tmp_path):
    stack = np.random.default_rng(7).integers(0, 4096, (6, 20, 24), dtype=np.uint16)
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, stack)
    with open_source(path) as src:
        assert (len(src), src.height, src.width, src.dtype) == (6, 20, 24, np.uint16)
        np.testing.assert_array_equal(src.read_raw(3), stack[3])
        assert src.read(3).shape == (20, 24, 3)


@pytest.mark.parametrize("compression", [None, "zlib"])  # memmap and page-by-page paths
def test_imagej_hyperstack_uses_t_as_time_and_c_as_channels(tmp_path, compression):
    data = np.random.default_rng(8).integers(0, 1000, (5, 2, 3, 16, 12), dtype=np.uint16)  # TZCYX
    path = tmp_path / "hyper.tif"
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "TZCYX"}, compression=compression)
    with pytest.warns(UserWarning, match="Z=2"):
        src = open_source(path)
    assert (len(src), src.height, src.width, src.channels) == (5, 16, 12, 3)
    np.testing.assert_array_equal(src.read_raw(4), data[4, 0].transpose(1, 2, 0))
    src.close()


def test_ome_tiff_without_t_uses_z_as_time(tmp_path):
    data = np.random.default_rng(9).random((4, 10, 8)).astype(np.float32)
    path = tmp_path / "z.ome.tif"
    tifffile.imwrite(path, data, ome=True, metadata={"axes": "ZYX"}, compression="zlib")
    with open_source(path) as src:
        assert len(src) == 4 and src.channels == 1
        np.testing.assert_array_equal(src.read_raw(2), data[2])


def test_mp4_count_size_and_random_access(tmp_path):
    frames = [_synthetic_frame(i) for i in range(12)]
    path = tmp_path / "clip.mp4"
    _write_video(path, frames, _encoder())
    sequential = VideoSource(path)
    assert (len(sequential), sequential.height, sequential.width, sequential.channels) == (12, 48, 64, 3)
    decoded = [sequential.read_raw(i).copy() for i in range(12)]
    random = VideoSource(path, cache_bytes=1)  # tiny cache: forces real seeks
    for i in (7, 2, 11, 7, 0, 6):
        np.testing.assert_array_equal(random.read_raw(i), decoded[i])
    for i in range(12):
        err = np.abs(decoded[i].astype(np.float32) - frames[i]).mean()
        assert err < 6, f"frame {i}: mean abs error {err}"
    out = random.read(7)
    np.testing.assert_array_equal(out, decoded[7].astype(np.float32) / 255)
    with pytest.raises(IndexError, match="frame 12 is out of range for a video of 12 frames"):
        random.read(12)
    sequential.close()
    random.close()


def test_video_sweeps_forward_and_backward_without_redecoding(tmp_path, monkeypatch):
    path = tmp_path / "sweep.avi"
    _write_video(path, [_synthetic_frame(i % 12) for i in range(24)], "mpeg4", gop=4)
    seeks = []
    original = VideoSource._seek
    monkeypatch.setattr(VideoSource, "_seek", lambda self, i: (seeks.append(i), original(self, i)))
    src = VideoSource(path, cache_bytes=1)  # keeps only 4 decoded frames
    forward = [src.read_raw(i).copy() for i in range(24)]
    assert seeks == []  # in-order reading decodes straight through
    backward = VideoSource(path, cache_bytes=8 * 48 * 64 * 3)  # keeps 8 decoded frames
    for i in reversed(range(24)):
        np.testing.assert_array_equal(backward.read_raw(i), forward[i])
    assert 1 <= len(seeks) <= 24 // 4  # about one seek per group of pictures, not one per frame


def test_video_can_be_shared_with_a_prefetch_thread(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "shared.avi"
    _write_video(path, [_synthetic_frame(i % 12) for i in range(24)], "mpeg4", gop=4)
    expected = [f.copy() for f in map(VideoSource(path).read_raw, range(24))]
    src = VideoSource(path, cache_bytes=1)
    order = list(np.random.default_rng(10).permutation(24)) * 2
    with ThreadPoolExecutor(max_workers=3) as pool:
        got = list(pool.map(lambda i: (i, src.read_raw(i).copy()), order))
    for i, frame in got:
        np.testing.assert_array_equal(frame, expected[i])


def test_refit_intensity_on_request():
    data = np.zeros((3, 4, 4), np.uint8)
    data[:, 0, 0], data[:, 1, 1] = 10, 50
    src = open_source(data)
    assert src.read(0)[1, 1, 0] == pytest.approx(50 / 255)
    norm = src.fit_intensity("minmax")
    assert src.normalizer is norm and (norm.low, norm.high) == ((0.0,), (50.0,))
    assert src.read(0)[1, 1, 0] == 1.0 and src.read(2)[0, 0, 0] == pytest.approx(0.2)


def test_folder_of_pngs_in_natural_order(tmp_path):
    for k in (10, 2, 1):
        Image.fromarray(np.full((6, 9, 3), k, np.uint8)).save(tmp_path / f"frame{k}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    src = open_source(tmp_path)
    assert (len(src), src.height, src.width, src.channels) == (3, 6, 9, 3)
    assert [src.read_raw(i)[0, 0, 0] for i in range(3)] == [1, 2, 10]
    Image.fromarray(np.zeros((7, 9, 3), np.uint8)).save(tmp_path / "frame11.png")
    with pytest.raises(ValueError, match="frame11.png is 9x7 but frame1.png is 9x6"):
        open_source(tmp_path)


def test_single_image_file_is_one_frame(tmp_path):
    grey = np.arange(30, dtype=np.uint8).reshape(5, 6)
    Image.fromarray(grey).save(tmp_path / "one.png")
    src = open_source(tmp_path / "one.png")
    assert len(src) == 1 and src.channels == 1
    np.testing.assert_array_equal(src.read(0)[..., 1], grey.astype(np.float32) / 255)


# -- errors -------------------------------------------------------------------
def test_text_file_named_mp4_is_rejected_clearly(tmp_path):
    path = tmp_path / "x.mp4"
    path.write_text("this is not a video\n")
    with pytest.raises(ValueError, match=r"x\.mp4 is not a readable video file"):
        open_source(path)


def test_unreadable_tiff_and_image_files(tmp_path):
    (tmp_path / "fake.tif").write_text("not a tiff")
    with pytest.raises(ValueError, match=r"fake\.tif is not a readable TIFF file"):
        open_source(tmp_path / "fake.tif")
    (tmp_path / "fake.jpg").write_text("not a jpeg")
    with pytest.raises(ValueError, match=r"fake\.jpg is not a readable image file"):
        open_source(tmp_path / "fake.jpg")


def test_empty_video_and_missing_paths(tmp_path):
    path = tmp_path / "empty.avi"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        container.start_encoding()
    with pytest.raises(ValueError, match=r"empty \(0 frames\)|no video stream"):
        open_source(path)
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        open_source(tmp_path / "missing.mp4")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(ValueError, match="contains no image files"):
        open_source(tmp_path / "empty_dir")


def test_corrupt_image_in_folder(tmp_path):
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "a1.png")
    (tmp_path / "a2.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(ValueError, match=r"a2\.png is not a readable image file"):
        open_source(tmp_path)


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros(5, np.uint8), "got a 1-D"),
        (np.zeros((2, 3, 4, 5, 6), np.uint8), "got a 5-D"),
        (np.zeros((3, 0, 4), np.uint8), "zero-size frames"),
        (np.zeros((0, 4, 4), np.uint16), r"empty \(0 frames\)"),
        (np.zeros((2, 4, 4), np.complex64), "unsupported dtype"),
    ],
)
def test_bad_arrays_are_rejected(array, message):
    with pytest.raises(ValueError, match=message):
        open_source(array)


def test_index_errors_and_closed_sources():
    src = open_source(np.zeros((10, 4, 4), np.uint8))
    with pytest.raises(IndexError, match="frame 12 is out of range for a video of 10 frames"):
        src.read(12)
    with pytest.raises(IndexError, match="frame -1 is out of range.*negative"):
        src.read_raw(-1)
    with pytest.raises(TypeError, match="integer"):
        src.read(1.5)
    src.close()
    with pytest.raises(ValueError, match="closed"):
        src.read(0)
    with pytest.raises(TypeError, match="cannot read frames from a dict"):
        open_source({"a": 1})
