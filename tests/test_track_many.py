"""Batch tracking on a real Dask LocalCluster of 2 single-threaded worker processes, over 4 short synthetic
movies (prompts file, label image, automatic masks, and one corrupt file): 3 results and 1 reported failure,
a rerun that skips the finished movies, and a result killed mid-write that is redone."""

import json
import logging
import shutil

import numpy as np
import pytest
import tifffile

distributed = pytest.importorskip("distributed")

from sam2_plugins import track_many  # noqa: E402
from sam2_plugins.batch.results import MARKER  # noqa: E402
from sam2_plugins.batch.worker import loaded_model_count  # noqa: E402
from sam2_plugins.cli import main  # noqa: E402
from sam2_plugins.sample import clicks_for_labels  # noqa: E402
from sam2_plugins.synthetic import make_timelapse  # noqa: E402

FRAMES, SIZE = 6, 96
# automatic masks once, on the seed frame: keeps the movies quick; one torch thread, as the other runs compared
# with these (a division decided on a float's last bits can go either way with another thread count)
QUICK = {"new_cells_every": 50, "torch_threads": 1}
TRACK_FILES = {"labels.tif", "tracks.csv", "ctc", "tracks.geff", "session.sam2session"}


def write_movies(folder):
    """a.tif + a.prompts.json, b.tif + a label image, c.tif (automatic masks), d.tif (corrupt), and a CSV
    manifest of the four."""
    folder.mkdir(parents=True, exist_ok=True)
    lapses = {}
    for i, name in enumerate("abc"):
        lapses[name] = make_timelapse(300 + i, num_frames=FRAMES, height=SIZE, width=SIZE, num_cells=3)
        tifffile.imwrite(folder / f"{name}.tif", lapses[name].frames)
    (folder / "a.prompts.json").write_text(json.dumps({"objects": clicks_for_labels(lapses["a"].labels)}))
    tifffile.imwrite(folder / "b_labels.tif", lapses["b"].labels[0].astype(np.uint16))
    (folder / "d.tif").write_bytes(b"II*\x00" + bytes(range(256)) * 8)  # a TIFF header, then nonsense
    (folder / "manifest.csv").write_text(
        "movie,prompts\na.tif,a.prompts.json\nb.tif,b_labels.tif\nc.tif,auto\nd.tif,auto\n")
    return folder / "manifest.csv"


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                       silence_logs=logging.ERROR)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def first_run(client, tmp_path_factory):
    manifest = write_movies(tmp_path_factory.mktemp("movies"))
    out = tmp_path_factory.mktemp("results")
    summary = track_many(manifest, out, client=client, progress=False, **QUICK)
    return manifest, out, summary


def test_three_results_and_one_reported_failure(first_run, client):
    manifest, out, summary = first_run
    assert summary.counts == {"done": 3, "skipped": 0, "failed": 1}
    failed = summary.row("d")
    assert failed["status"] == "failed" and "d.tif" in failed["reason"]
    assert not (out / "d").exists()  # nothing that could pass for a result
    for name in "abc":
        row = summary.row(name)
        assert row["status"] == "done" and row["frames"] == FRAMES and row["objects"] >= 1
        assert TRACK_FILES <= {p.name for p in (out / name).iterdir()}
        labels = tifffile.imread(out / name / "labels.tif")
        assert labels.shape == (FRAMES, SIZE, SIZE) and labels[-1].any()  # tracked to the last frame
    lines = (out / "summary.csv").read_text().splitlines()
    assert lines[0] == "movie,frames,objects,divisions,seconds,status,reason" and len(lines) == 5
    # each worker process loaded the model once, for all the movies it tracked
    assert all(n <= 1 for n in client.run(loaded_model_count).values())


def test_a_batch_result_is_what_track_writes(first_run, tmp_path, one_thread):
    manifest, out, _ = first_run
    folder = manifest.parent
    alone = tmp_path / "a"
    assert main(["track", str(folder / "a.tif"), "--prompts", str(folder / "a.prompts.json"),
                 "--out", str(alone), "--new-cells-every", "50", "--quiet"]) == 0  # the batch's options
    assert {p.name for p in alone.iterdir()} | {MARKER} == {p.name for p in (out / "a").iterdir()}
    np.testing.assert_array_equal(tifffile.imread(alone / "labels.tif"), tifffile.imread(out / "a" / "labels.tif"))
    assert (alone / "tracks.csv").read_text() == (out / "a" / "tracks.csv").read_text()


def test_a_rerun_skips_the_finished_movies(first_run, client, tmp_path):
    manifest, first, summary = first_run
    out = tmp_path / "again"
    shutil.copytree(first, out)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != "summary.csv"}
    again = track_many(manifest, out, client=client, progress=False, **QUICK)
    assert again.counts == {"done": 0, "skipped": 3, "failed": 1}
    assert [again.row(n)["objects"] for n in "abc"] == [summary.row(n)["objects"] for n in "abc"]
    assert stamps == {p: p.stat().st_mtime_ns for p in stamps}  # not one file written again


def test_a_result_killed_mid_write_is_redone(first_run, client, tmp_path):
    manifest, first, _ = first_run
    out = tmp_path / "killed"
    shutil.copytree(first, out)
    # b as a job killed while writing leaves it: no marker, a cut labels.tif; and c's unfinished temp folder
    (out / "b" / MARKER).unlink()
    cut = out / "b" / "labels.tif"
    cut.write_bytes(cut.read_bytes()[:300])
    leftover = out / ".partial-c-0123abcd"
    leftover.mkdir()
    (leftover / "labels.tif").write_bytes(b"half")
    rerun = track_many(manifest, out, client=client, progress=False, **QUICK)
    assert rerun.row("b")["status"] == "done"
    assert [rerun.row(n)["status"] for n in "acd"] == ["skipped", "skipped", "failed"]
    np.testing.assert_array_equal(tifffile.imread(out / "b" / "labels.tif"),
                                  tifffile.imread(first / "b" / "labels.tif"))
    assert (out / "b" / MARKER).is_file()
    assert not leftover.exists() and not list(out.glob(".partial-*"))


def test_the_command_on_a_folder_prints_the_summary_and_fails_for_a_failed_movie(first_run, tmp_path, capsys):
    """`sam2-plugins track-many FOLDER --out DIR` on its own local cluster: a.tif with its prompts beside it,
    and the corrupt d.tif."""
    folder = tmp_path / "movies"
    folder.mkdir()
    for name in ("a.tif", "a.prompts.json", "d.tif"):
        shutil.copy(first_run[0].parent / name, folder / name)
    out = tmp_path / "out"
    code = main(["track-many", str(folder), "--out", str(out), "--workers", "1", "--new-cells-every", "50",
                 "--quiet"])
    assert code == 1  # one movie failed
    printed = capsys.readouterr().out
    assert "a" in printed and "done" in printed and "failed" in printed and "summary.csv" in printed
    np.testing.assert_array_equal(tifffile.imread(out / "a" / "labels.tif"),
                                  tifffile.imread(first_run[1] / "a" / "labels.tif"))
