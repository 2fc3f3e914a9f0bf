"""Bad input to batch tracking fails at once, with a message that names the problem, before any cluster
starts: an empty folder, a manifest naming a missing file, an unreachable scheduler (within seconds),
an HPC queue without dask-jobqueue (names the extra to install)."""

import json
import socket
import sys
import time

import numpy as np
import pytest

pytest.importorskip("distributed")

from sam2_plugins import track_many  # noqa: E402
from sam2_plugins.batch.cluster import JobqueueOptions, MissingExtraError, jobqueue_cluster, local_layout  # noqa: E402
from sam2_plugins.cli import main  # noqa: E402


@pytest.fixture
def movie(tmp_path):
    path = tmp_path / "m.npy"
    np.save(path, np.zeros((3, 32, 32), np.uint8))
    return path


def one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sam2-plugins: error:"), lines
    return lines[0]


def test_an_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no movies here")
    assert main(["track-many", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert "holds no movies" in one_error_line(capsys)
    with pytest.raises(ValueError, match="no movies match"):
        track_many(str(tmp_path / "empty" / "*.tif"), tmp_path / "o", progress=False)


def test_a_manifest_naming_a_missing_file(tmp_path, movie, capsys):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"movie,prompts\n{movie.name},auto\ngone.tif,auto\n")
    assert main(["track-many", str(manifest), "--out", str(tmp_path / "o")]) == 2
    line = one_error_line(capsys)
    assert "line 3" in line and "gone.tif" in line
    as_json = tmp_path / "manifest.json"
    as_json.write_text(json.dumps({"movies": [{"movie": movie.name, "prompts": "clicks.json"}]}))
    with pytest.raises(FileNotFoundError, match=r"movies\[0\].*clicks.json"):
        track_many(as_json, tmp_path / "o", progress=False)
    assert not (tmp_path / "o").exists()  # nothing made before the error


def test_bad_prompts_and_clashing_names_are_refused_before_work(tmp_path, movie):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"objects": [{"id": 1, "frame": 0}]}))
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"movie,prompts\n{movie.name},bad.json\n")
    with pytest.raises(ValueError, match="line 2.*has no \"points\""):
        track_many(manifest, tmp_path / "o", progress=False)
    (tmp_path / "sub").mkdir()
    np.save(tmp_path / "sub" / "m.npy", np.zeros((3, 32, 32), np.uint8))
    with pytest.raises(ValueError, match="same result folder 'm'"):
        track_many([movie, tmp_path / "sub"], tmp_path / "o", progress=False)


def test_an_unreachable_scheduler_fails_within_seconds(tmp_path, movie, capsys):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    start = time.perf_counter()
    assert main(["track-many", str(movie), "--out", str(tmp_path / "o"), "--scheduler", address]) == 2
    assert time.perf_counter() - start < 15
    assert f"cannot reach the Dask scheduler at {address}" in one_error_line(capsys)


def test_slurm_without_dask_jobqueue_names_the_extra(tmp_path, movie, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "dask_jobqueue", None)  # as if not installed
    assert main(["track-many", str(movie), "--out", str(tmp_path / "o"), "--cluster", "slurm"]) == 2
    line = one_error_line(capsys)
    assert "dask-jobqueue" in line and "sam2-plugins[cluster]" in line
    with pytest.raises(MissingExtraError, match=r"sam2-plugins\[cluster\]"):
        track_many(movie, tmp_path / "o", cluster="pbs", progress=False)


def test_slurm_jobs_ask_for_one_gpu_the_memory_and_the_walltime():
    pytest.importorskip("dask_jobqueue")
    options = JobqueueOptions(queue="gpu", account="lab", walltime="04:00:00", memory="48GB", cores=6,
                              max_jobs=3, prologue=["export SAM2_PLUGINS_CACHE=/shared/models"])
    cluster = jobqueue_cluster("slurm", options)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for line in ("#SBATCH --gres=gpu:1", "#SBATCH -p gpu", "#SBATCH -A lab", "#SBATCH -t 04:00:00",
                 "#SBATCH --cpus-per-task=6", "export SAM2_PLUGINS_CACHE=/shared/models"):
        assert line in script, script
    assert "--resources GPU=1" in script  # one movie at a time on the job's GPU
    with pytest.raises(ValueError, match="one GPU per job"):
        jobqueue_cluster("slurm", JobqueueOptions(gpus=2))


def test_the_local_cluster_fits_the_machine():
    gib = 1024**3
    # 2 cores, no GPU: two single-threaded workers (fewer when there are fewer movies)
    assert local_layout(4, cores=2, gpus=0, memory_bytes=16 * gib) == local_layout(9, cores=2, gpus=0,
                                                                                  memory_bytes=16 * gib)
    assert (local_layout(4, cores=2, gpus=0, memory_bytes=16 * gib).workers,
            local_layout(1, cores=2, gpus=0, memory_bytes=16 * gib).workers) == (2, 1)
    # 32 cores but 8 GiB: no more workers than the memory holds
    assert local_layout(50, cores=32, gpus=0, memory_bytes=8 * gib).workers == 4
    # 2 GPUs: one worker each, one movie at a time (resource GPU=1), the cores shared among them
    gpu = local_layout(50, cores=16, gpus=2, memory_bytes=64 * gib)
    assert (gpu.workers, gpu.torch_threads, gpu.resources) == (2, 8, {"GPU": 1})
