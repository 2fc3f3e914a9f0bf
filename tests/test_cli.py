"""The command line: the README's main job end to end, and one-line errors."""

import json
import subprocess
import sys

import numpy as np
import tifffile

from conftest import MICRO_CONFIG, MICRO_WEIGHTS
from sam2_plugins.cli import main


def test_cli_errors_are_one_line_with_nonzero_exit(tmp_path):
    bad = tmp_path / "prompts.json"
    bad.write_text(json.dumps({"objects": [{"id": 1, "frame": 0}]}))
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"objects": [{"id": 1, "frame": 0, "points": [[3, 3]], "labels": [1]}]}))
    frames = tmp_path / "frames.npy"
    np.save(frames, np.zeros((3, 32, 32), np.uint8))
    common = ["--model", str(MICRO_WEIGHTS), "--config", str(MICRO_CONFIG), "--out", str(tmp_path / "o")]
    cases = [
        (["track", str(frames), "--prompts", str(bad)] + common, "has no \"points\", \"box\" or \"mask\""),
        (["track", str(tmp_path / "nope.mp4"), "--prompts", str(good)] + common, "nope.mp4"),
        (["track", str(frames), "--prompts", str(tmp_path / "missing.json")] + common, "missing.json"),
        (["track", "sample", "--format", "labels,gif"] + common, "unknown export format"),
        (["track", "sample", "--model", "sam3-giant", "--out", str(tmp_path / "o")], "no checkpoint file"),
        (["track", "sample", "--image-size", "100", "--out", str(tmp_path / "o")], "multiple of 32"),
    ]
    for argv, message in cases:
        proc = subprocess.run([sys.executable, "-m", "sam2_plugins.cli", *argv], capture_output=True, text=True)
        assert proc.returncode != 0, argv
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("sam2-plugins: error:"), proc.stderr
        assert message in lines[0]


def test_help_documents_the_prompts_file():
    proc = subprocess.run([sys.executable, "-m", "sam2_plugins.cli", "track", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert '"points"' in proc.stdout and '"box"' in proc.stdout and '"mask"' in proc.stdout and "parents" in proc.stdout


def test_track_with_a_custom_checkpoint_and_prompts_file(tmp_path, reference):
    frames = tmp_path / "clip.npy"
    np.save(frames, reference["frames"])
    prompts = tmp_path / "p.json"
    prompts.write_text(json.dumps({"objects": [
        {"id": 1, "frame": 0, "points": [[35, 30]], "labels": [1]},
        {"id": 2, "frame": 0, "box": [80, 50, 110, 80]},
    ]}))
    out = tmp_path / "o"
    code = main(["track", str(frames), "--prompts", str(prompts), "--model", str(MICRO_WEIGHTS),
                 "--config", str(MICRO_CONFIG), "--out", str(out), "--format", "labels,masks,overlay", "--quiet"])
    assert code == 0
    labels = tifffile.imread(out / "labels.tif")
    assert labels.shape == (10, 96, 128)
    assert len(list((out / "masks").glob("*.png"))) == 20
    import av

    with av.open(str(out / "overlay.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 10


def test_dtype_option_is_used_and_shown(tmp_path, capsys):
    """--dtype overrides the automatic choice; the progress line names the device and dtype in use."""
    runs = {}
    for dtype in ("float32", "bfloat16"):
        out = tmp_path / dtype
        argv = ["track", "sample", "--device", "cpu", "--dtype", dtype, "--out", str(out), "--format", "labels"]
        assert main(argv) == 0
        assert f"(cpu, {dtype})" in capsys.readouterr().err
        runs[dtype] = tifffile.imread(out / "labels.tif")
    a, b = runs["float32"] > 0, runs["bfloat16"] > 0
    assert (a & b).sum() / (a | b).sum() > 0.95  # the same cells, to bf16 rounding
    proc = subprocess.run([sys.executable, "-m", "sam2_plugins.cli", "track", "sample", "--dtype", "fp8",
                           "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert proc.returncode == 2 and "--dtype" in proc.stderr


def test_lower_working_resolution_keeps_the_frame_size(tmp_path):
    """--image-size runs the model at another resolution; exports keep the movie's own size."""
    import tifffile as tf

    from sam2_plugins.sample import sample_paths

    out = tmp_path / "low"
    assert main(["track", "sample", "--image-size", "128", "--out", str(out), "--format", "labels", "--quiet"]) == 0
    video, prompts = sample_paths()
    frames, labels = tf.imread(video), tf.imread(out / "labels.tif")
    assert labels.shape == frames.shape
    clicked = {o["id"] for o in json.loads(prompts.read_text())["objects"]}
    truth = np.load(str(video).replace(".tif", ".truth.npz"))["labels"]
    ious = [((labels[0] == i) & (truth[0] == i)).sum() / ((labels[0] == i) | (truth[0] == i)).sum() for i in clicked]
    assert np.mean(ious) > 0.3  # half resolution still finds the clicked cells
