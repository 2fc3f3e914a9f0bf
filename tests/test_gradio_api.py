"""The Gradio app through its API (gradio_client): isolation between visitors, refused uploads, the
limits, the clean-up of a session's folder, and tracked masks against the sample's ground truth.

One app process (tight limits) serves every test here.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")

from gradio_app.devtools import inner_point, running_app, sample_truth  # noqa: E402

POSITIVE = "Add to the object (positive click)"
LIMITS = {"SAM2_APP_MAX_FRAMES": "20", "SAM2_APP_MAX_SECONDS": "5", "SAM2_APP_MAX_SIDE": "256",
          "SAM2_APP_MAX_OBJECTS": "3", "SAM2_APP_MAX_UPLOAD_MB": "1"}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    base = tmp_path_factory.mktemp("gradio_api")
    root = base / "sessions"
    offline = {"HF_HUB_OFFLINE": "1", "SAM2_PLUGINS_CACHE": str(base / "no-checkpoints")}
    with running_app(root, {**LIMITS, **offline}) as url:
        yield url, root


@pytest.fixture(scope="module")
def truth():
    return sample_truth()


def client(url):
    return gradio_client.Client(url, verbose=False)


def summary(result):
    """The hidden JSON summary that every view-returning endpoint gives (5th output)."""
    return result[4]


def write_video(path: Path, frames: np.ndarray, fps: float) -> Path:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def refused(c, path) -> str:
    with pytest.raises(Exception) as err:
        c.predict(gradio_client.handle_file(str(path)), api_name="/upload")
    return str(err.value)


def test_two_visitors_in_parallel_see_only_their_own_objects_and_files(app, truth):
    url, _ = app
    frames, labels = truth
    results, errors = {}, []

    def visit(name: str, target: int):
        try:
            c = client(url)
            c.predict(api_name="/load_sample")
            x, y = inner_point(labels[0] == target)
            c.predict(0, x, y, POSITIVE, api_name="/click")
            c.predict(f"{name} thing", 0, api_name="/rename")
            out = c.predict("Forward from the first click", "Coloured overlay", 0, api_name="/track")
            results[name] = (summary(out), out[6])
            c.close()
        except Exception as exc:  # reported below, with the visitor's name
            errors.append(f"{name}: {exc!r}")

    threads = [threading.Thread(target=visit, args=(n, t)) for n, t in (("alice", 1), ("bob", 2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    (sa, files_a), (sb, files_b) = results["alice"], results["bob"]
    assert [o["name"] for o in sa["objects"]] == ["alice thing"]
    assert [o["name"] for o in sb["objects"]] == ["bob thing"]
    assert not set(files_a) & set(files_b), "two visitors were given the same file"
    # each visitor's label stack holds their own object where it truly is, and nothing of the other's
    import tifffile

    for (files, target) in ((files_a, 1), (files_b, 2)):
        stack = tifffile.imread(next(f for f in files if f.endswith(".tif")))
        mask = stack == 1
        truth_mask = labels == target
        iou = (mask & truth_mask).sum() / (mask | truth_mask).sum()
        assert iou > 0.8, f"object {target}: IoU {iou:.2f} with the truth"


def test_a_fake_mp4_is_refused_with_a_message_and_nothing_is_lost(app, tmp_path, truth):
    url, _ = app
    c = client(url)
    try:
        c.predict(api_name="/load_sample")
        x, y = inner_point(truth[1][0] == 3)
        c.predict(0, x, y, POSITIVE, api_name="/click")
        fake = tmp_path / "holiday.mp4"
        fake.write_bytes(b"this is not a video at all\n" * 100)
        assert "not a readable video or image" in refused(c, fake)
        # the sample and its object are still there
        after = summary(c.predict(0, api_name="/frame"))
        assert after["clip"]["name"] == "the sample video" and len(after["objects"]) == 1
    finally:
        c.close()


def test_limits_are_enforced(app, tmp_path, truth):
    url, _ = app
    frames = truth[0]
    c = client(url)
    try:
        too_many = write_video(tmp_path / "long.mp4", np.concatenate([frames, frames]), fps=8)  # 32 frames, 4 s
        assert "32 frames; the limit is 20" in refused(c, too_many)
        too_long = write_video(tmp_path / "slow.mp4", frames[:12], fps=2)  # 6 s
        assert "lasts 6.0 s; the limit is 5 s" in refused(c, too_long)
        # the server itself refuses a file over the size limit (not only the client's own check)
        import httpx

        answer = httpx.post(url + "gradio_api/upload", files={"files": ("big.mp4", os.urandom(1_200_000))})
        assert answer.status_code == 413 and "maximum allowed size" in answer.text
        # a larger image is downscaled to the longest side allowed
        from PIL import Image

        Image.fromarray(np.repeat(np.repeat(frames[0], 2, 0), 2, 1)).save(tmp_path / "photo.png")  # 512 x 384
        s = summary(c.predict(gradio_client.handle_file(str(tmp_path / "photo.png")), api_name="/upload"))
        assert (s["clip"]["width"], s["clip"]["height"], s["clip"]["frames"]) == (256, 192, 1)
        assert "downscaled from 512x384" in s["clip"]["note"]
        for _ in range(3):
            c.predict(0, api_name="/new_object")
        with pytest.raises(Exception, match="At most 3 objects"):
            c.predict(0, api_name="/new_object")
        assert len(summary(c.predict(0, api_name="/frame"))["objects"]) == 3
    finally:
        c.close()


def test_a_session_folder_is_removed_when_the_session_ends(app):
    url, root = app
    before = set(os.listdir(root)) if root.exists() else set()
    c = client(url)
    c.predict(api_name="/load_sample")
    c.predict(0, 100, 100, POSITIVE, api_name="/click")
    mine = set(os.listdir(root)) - before
    assert len(mine) == 1
    folder = root / mine.pop()
    assert (folder / "frames.npy").exists()
    c.close()  # the heartbeat stops: Gradio's unload event fires
    deadline = time.monotonic() + 20
    while folder.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not folder.exists()


def test_segment_everything_finds_the_sample_objects_then_tracks_them(app, truth):
    url, _ = app
    labels = truth[1]
    c = client(url)
    try:
        c.predict(api_name="/load_sample")
        s = summary(c.predict(0, api_name="/segment_everything"))
        assert len(s["objects"]) == 3 and all(o["prompted_frames"] == [0] for o in s["objects"])
        out = c.predict("Both directions", "Grey out the rest", 0, api_name="/track")
        import tifffile

        stack = tifffile.imread(next(f for f in out[6] if f.endswith(".tif")))
        # each true object is one found object over the clip
        for target in (1, 2, 3):
            found = np.bincount(stack[labels == target].ravel(), minlength=4)[1:]
            oid = int(found.argmax()) + 1
            iou = ((stack == oid) & (labels == target)).sum() / ((stack == oid) | (labels == target)).sum()
            assert iou > 0.7, f"true object {target}: IoU {iou:.2f} with object {oid}"
        assert out[5].endswith(".mp4")
    finally:
        c.close()


def test_an_official_model_that_cannot_be_downloaded_leaves_the_session_working(app, truth):
    url, _ = app
    c = client(url)
    try:
        c.predict(api_name="/load_sample")
        chosen, status = c.predict("sam2.1-hiera-tiny", api_name="/model")
        assert chosen == "micro-synthetic" and "Still using micro-synthetic" in status
        x, y = inner_point(truth[1][0] == 2)
        assert "pixels on frame 0" in c.predict(0, x, y, POSITIVE, api_name="/click")[3]
    finally:
        c.close()


def test_stop_keeps_the_frames_tracked_so_far(app, truth, tmp_path):
    url, _ = app
    frames, labels = truth
    clip = write_video(tmp_path / "twenty.mp4", np.concatenate([frames, frames[::-1][:4]]), fps=8)  # 20 frames
    c = client(url)
    try:
        c.predict(gradio_client.handle_file(str(clip)), api_name="/upload")
        x, y = inner_point(labels[0] == 1)
        c.predict(0, x, y, POSITIVE, api_name="/click")
        job = c.submit("Forward from the first click", "Coloured overlay", 0, api_name="/track")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # stop once the progress bar has moved
            progress = job.status().progress_data
            if progress and progress[0].index and progress[0].index >= 1:
                break
            time.sleep(0.01)
        assert c.predict(api_name="/stop").startswith("Stopping")
        out = job.result(timeout=60)
        s = summary(out)
        assert "Stopped after" in out[3] and 1 <= s["tracked_frames"] < 20
        import tifffile

        stack = tifffile.imread(next(f for f in out[6] if f.endswith(".tif")))
        assert (stack[: s["tracked_frames"]] == 1).any(axis=(1, 2)).all(), "a tracked frame lost its mask"
    finally:
        c.close()


def test_a_box_prompt_masks_the_object_inside_it(app, truth):
    from PIL import Image

    url, _ = app
    frames, labels = truth
    target = labels[0] == 3
    ys, xs = np.nonzero(target)
    box_mode = "Box: click two opposite corners"
    c = client(url)
    try:
        c.predict(api_name="/load_sample")
        assert "opposite corner" in c.predict(0, int(xs.min()) - 2, int(ys.min()) - 2, box_mode, api_name="/click")[3]
        out = c.predict(0, int(xs.max()) + 2, int(ys.max()) + 2, box_mode, api_name="/click")
        shown = np.asarray(Image.open(out[0]).convert("RGB"))
        shown = shown[:: shown.shape[0] // frames.shape[1], :: shown.shape[1] // frames.shape[2]]
        drawn = np.abs(shown.astype(int) - frames[0].astype(int)).max(-1) > 24
        inside = np.zeros_like(target)
        inside[ys.min():ys.max() + 1, xs.min():xs.max() + 1] = True
        drawn &= inside  # the box's own outline is drawn too
        iou = (drawn & target).sum() / (drawn | target).sum()
        assert iou > 0.7, f"box prompt: IoU {iou:.2f} with the truth"
    finally:
        c.close()
