"""Errors come before work, and interrupted work is kept: object ids, the output folder, image
shapes, and a cancelled or failed `track` that `--resume` completes."""

import json
import os
import select
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tifffile
from PIL import Image

from conftest import MICRO_CONFIG, MICRO_WEIGHTS
from sam2_plugins import MAX_OBJECT_ID, load_model
from sam2_plugins.cli import main
from sam2_plugins.sample import sample_paths
from sam2_plugins.video import load_session, save_session


@pytest.fixture(scope="module")
def shipped():
    return load_model("micro-synthetic", device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def sample():
    video, prompts = sample_paths()
    return tifffile.imread(video), json.loads(prompts.read_text())["objects"]


@pytest.mark.parametrize("obj_id", [0, MAX_OBJECT_ID + 1, 2**40, -3, 1.5, True])
def test_object_ids_outside_what_exports_write_are_refused_when_added(micro_model, reference, obj_id):
    session = micro_model.open_video(reference["frames"])
    session.add_points(0, 7, [[35, 30]], [1])
    with pytest.raises(ValueError, match="from 1 to 65535"):
        session.add_points(0, obj_id, [[80, 60]], [1])
    assert session.object_ids == [7]
    session.add_points(0, MAX_OBJECT_ID, [[80, 60]], [1])  # the largest id is written by every export
    list(session.propagate())
    assert set(np.unique(session.labels())) <= {0, 7, MAX_OBJECT_ID}


def test_the_cli_refuses_an_id_no_export_can_write_before_tracking(tmp_path):
    prompts = tmp_path / "p.json"
    prompts.write_text(json.dumps({"objects": [{"id": 70000, "frame": 0, "points": [[20, 20]], "labels": [1]}]}))
    proc = subprocess.run([sys.executable, "-m", "sam2_plugins.cli", "track", "sample", "--prompts", str(prompts),
                           "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "object id 70000 is out of range" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()


def test_an_output_folder_that_cannot_be_written_fails_before_tracking(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    start = time.perf_counter()
    assert main(["track", "sample", "--out", str(blocker / "results"), "--quiet"]) == 2
    assert time.perf_counter() - start < 5  # nothing was tracked
    assert "cannot write to the output folder" in capsys.readouterr().err


def test_predict_image_refuses_a_stack_and_names_its_shape(micro_model, reference):
    stack = reference["frames"][..., 0]  # (10, 96, 128): ten grey frames, not one image
    wide = np.moveaxis(np.repeat(stack[:1], 6, axis=0), 0, -1)  # (96, 128, 6)
    for bad in (stack, wide, reference["frames"]):
        with pytest.raises(ValueError, match=str(tuple(bad.shape)).replace("(", r"\(").replace(")", r"\)")):
            micro_model.predict_image(bad, points=[[35, 30]], labels=[1])


def _prompt_mid_video(session, objects, frame):
    for obj in objects:
        session.add_points(frame, obj["id"], obj["points"], obj["labels"])


@pytest.mark.parametrize("stop_after", [4, 26])  # in the forward pass; in the backward pass
def test_a_cancelled_propagation_saved_and_reloaded_goes_on_to_the_same_labels(shipped, sample, tmp_path,
                                                                               stop_after):
    frames, objects = sample
    first = 10  # prompts on frame 10: a forward pass to frame 29, then a backward one to frame 0
    whole = shipped.open_video(frames)
    _prompt_mid_video(whole, objects, first)
    list(whole.propagate_all())
    expected = whole.labels()

    session = shipped.open_video(frames)
    _prompt_mid_video(session, objects, first)
    seen = []
    for result in session.propagate_all(cancel=lambda: len(seen) >= stop_after):
        seen.append(result.frame_index)
    assert len(seen) == stop_after
    save_session(session, tmp_path / "partial.sam2session")
    partial = session.labels()
    assert (partial[seen] == expected[seen]).all()  # the finished frames are kept as they were
    untouched = sorted(set(range(len(frames))) - set(seen) - {first})
    assert not partial[untouched].any()

    reloaded = load_session(tmp_path / "partial.sam2session", shipped, frames)
    rest = [r.frame_index for r in reloaded.propagate_all(resume=True)]
    # it goes on where it stopped: no finished frame is tracked again
    assert seen + rest == list(range(first, 30)) + list(range(first, -1, -1))
    np.testing.assert_array_equal(reloaded.labels(), expected)


def _run_until(argv, frames_done, timeout=120):
    """Start the CLI, wait until its progress bar shows ``frames_done`` frames, then press Ctrl-C."""
    proc = subprocess.Popen([sys.executable, "-m", "sam2_plugins.cli", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], 1.0)
        if ready:
            chunk = os.read(proc.stderr.fileno(), 4096)
            if not chunk:
                break
            seen += chunk
            counts = [int(c.split(b"/")[0]) for c in
                      __import__("re").findall(rb"\| (\d+/\d+) \[", seen)]
            if counts and max(counts) >= frames_done:
                proc.send_signal(signal.SIGINT)
                break
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, (seen + err).decode(errors="replace")


def test_ctrl_c_during_track_keeps_the_tracked_frames_and_resume_completes_them(tmp_path):
    whole = tmp_path / "whole"
    assert main(["track", "sample", "--out", str(whole), "--quiet"]) == 0

    out = tmp_path / "cut"
    code, stderr = _run_until(["track", "sample", "--out", str(out)], frames_done=8)
    assert code == 130, stderr
    assert "--resume" in stderr and "interrupted after" in stderr
    session_file = out / "session.sam2session"
    partial = tifffile.imread(out / "labels.tif")
    expected = tifffile.imread(whole / "labels.tif")
    tracked = [t for t in range(len(expected)) if partial[t].any()]
    assert 8 <= len(tracked) < len(expected)
    np.testing.assert_array_equal(partial[tracked], expected[tracked])

    assert main(["track", "sample", "--out", str(out), "--resume", str(session_file), "--quiet"]) == 0
    np.testing.assert_array_equal(tifffile.imread(out / "labels.tif"), expected)
    assert (out / "tracks.csv").read_text() == (whole / "tracks.csv").read_text()


def test_a_frame_that_fails_mid_video_keeps_the_frames_before_it(tmp_path, reference, capsys):
    folder = tmp_path / "frames"
    folder.mkdir()
    for t, frame in enumerate(reference["frames"]):
        Image.fromarray(frame).save(folder / f"f{t:02d}.png")
    broken = folder / "f06.png"
    broken.write_bytes(broken.read_bytes()[:200])  # cut short: its header reads, its pixels do not
    prompts = tmp_path / "p.json"
    prompts.write_text(json.dumps({"objects": [{"id": 1, "frame": 0, "points": [[35, 30]], "labels": [1]}]}))
    out = tmp_path / "o"
    code = main(["track", str(folder), "--prompts", str(prompts), "--model", str(MICRO_WEIGHTS),
                 "--config", str(MICRO_CONFIG), "--out", str(out), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "f06.png" in err and "--resume" in err
    labels = tifffile.imread(out / "labels.tif")
    assert all(labels[t].any() for t in range(6)) and not labels[6:].any()
    assert (out / "session.sam2session").is_file()
