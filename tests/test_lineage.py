"""Lineage: seeding from a label image, divisions (scripted and found while tracking), and the
lineage in session files and exports."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from sam2_plugins import load_model
from sam2_plugins.cli import main
from sam2_plugins.sample import SAMPLE_SEED, SAMPLE_SHAPE, sample_paths
from sam2_plugins.synthetic import make_timelapse
from sam2_plugins.video import load_session, save_session
from sam2_plugins.video.cells import CellEvents, CellOptions


@pytest.fixture(scope="module")
def shipped():
    return load_model("micro-synthetic", device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def lapse():
    return make_timelapse(SAMPLE_SEED, dtype=np.uint16, **SAMPLE_SHAPE)  # the shipped sample, with its truth


def iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


def snapshot(session):
    return (session.object_ids, session.lineage.to_dict(), session.results.frames(),
            {o: (t.first_frame, t.last_frame, sorted(t.prompted_frames())) for o, t in session.tracks.items()})


def test_a_label_image_seeds_its_objects(shipped, lapse):
    session = shipped.open_video(lapse.frames[:6])
    ids = session.add_label_image(0, lapse.labels[0])
    truth = [int(i) for i in np.unique(lapse.labels[0]) if i]
    assert ids == truth
    labels = session.labels([0])[0]
    for i in truth:
        assert iou(labels == i, lapse.labels[0] == i) > 0.8  # each label is its object's mask prompt


@pytest.mark.parametrize("bad, message", [
    (np.zeros((10, 10), np.uint16), "label image has shape"),
    (np.zeros((192, 192), np.float32), "holds integers"),
    (np.full((192, 192), 70000, np.int64), "outside 1..65535"),
])
def test_a_bad_label_image_is_refused_and_changes_nothing(shipped, lapse, bad, message):
    session = shipped.open_video(lapse.frames[:4])
    session.add_points(0, 3, [[20, 20]], [1])
    before = snapshot(session)
    with pytest.raises(ValueError, match=message):
        session.add_label_image(0, bad)
    assert snapshot(session) == before


def test_a_scripted_division_gives_two_daughters_with_their_mother_in_every_export(shipped, lapse, tmp_path):
    first, last = lapse.tracks[2].first, lapse.tracks[2].last  # cell 2 divides into 12 and 13 on frame 19
    kids = sorted(k for k, m in lapse.lineage.items() if m == 2)
    session = shipped.open_video(lapse.frames)
    session.add_label_image(0, lapse.labels[0])
    list(session.propagate_all())
    daughters = session.divide(last + 1, 2, masks=[lapse.labels[last + 1] == k for k in kids])
    list(session.propagate_all())
    assert session.lineage.parents == {d: 2 for d in daughters}
    labels = session.labels()
    assert not (labels[last + 1:] == 2).any() and (labels[last] == 2).any()  # the mother ends the frame before
    assert not (labels[: last + 1] == daughters[0]).any()  # daughters start on the division frame
    for d, k in zip(daughters, kids):
        assert iou(labels[last + 1] == d, lapse.labels[last + 1] == k) > 0.7

    save_session(session, tmp_path / "s.sam2session")
    reloaded = load_session(tmp_path / "s.sam2session", shipped, lapse.frames)
    assert snapshot(reloaded) == snapshot(session)

    out = tmp_path / "out"
    from sam2_plugins.cli import export_session

    export_session(session, out, ["labels", "tracks", "ctc"])
    rows = np.loadtxt(out / "ctc" / "res_track.txt", dtype=int, ndmin=2)
    ctc = {r[0]: (r[1], r[2], r[3]) for r in rows}
    assert ctc[2][1] == last and all(ctc[d] == (last + 1, len(labels) - 1, 2) for d in daughters)
    table = np.genfromtxt(out / "tracks.csv", delimiter=",", names=True, dtype=int)
    parent_of = {int(r["track_id"]): int(r["parent_id"]) for r in table}
    assert all(parent_of[d] == 2 for d in daughters) and parent_of[2] == 0
    from ctc_metrics.scripts.validate import validate_sequence

    assert validate_sequence(str(out / "ctc"))["Valid"] == 1


def test_bad_divisions_are_refused_and_change_nothing(shipped, lapse):
    session = shipped.open_video(lapse.frames[:12])
    session.add_label_image(0, lapse.labels[0])
    list(session.propagate_all())
    before = snapshot(session)
    kid = lapse.labels[5] == 1
    halves = [kid & (np.arange(192)[None, :] < 96), kid & (np.arange(192)[None, :] >= 96)]
    with pytest.raises(ValueError, match="overlap"):
        session.divide(5, 1, masks=[kid, kid])
    with pytest.raises(KeyError, match="unknown object id 99"):
        session.divide(5, 99, masks=halves)
    session.add_mask(8, 20, lapse.labels[8] == 9, starts_here=True)  # the cell entering on frame 8
    before = snapshot(session)
    with pytest.raises(ValueError, match="absent on frame 5"):
        session.divide(5, 20, masks=halves)
    with pytest.raises(ValueError, match="two daughters"):
        session.divide(5, 1, masks=halves[:1])
    assert snapshot(session) == before


def test_a_division_is_found_while_tracking_the_sample(shipped, lapse):
    video, prompts = sample_paths()
    session = shipped.open_video(str(video))
    for o in json.loads(prompts.read_text())["objects"]:
        session.add_points(o["frame"], o["id"], o["points"], o["labels"])
    list(session.propagate_all(events=CellEvents(session, CellOptions())))
    found = {d.mother: d for d in session.lineage.divisions()}
    assert 2 in found  # cell 2 divides into two touching daughters on frame 19
    division = found[2]
    assert abs(division.frame - lapse.tracks[2].last - 1) <= 1
    labels = session.labels()
    kids = [k for k, m in lapse.lineage.items() if m == 2]
    f = division.frame
    matched = {max(kids, key=lambda k: iou(labels[f] == d, lapse.labels[f] == k)) for d in division.daughters}
    assert matched == set(kids)


def test_seed_with_a_file_that_is_not_an_image_is_a_clear_error(tmp_path):
    fake = tmp_path / "labels.tif"
    fake.write_text("not a tiff")
    proc = subprocess.run([sys.executable, "-m", "sam2_plugins", "track", "sample", "--seed", str(fake),
                           "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "is not a readable image" in proc.stderr and "Traceback" not in proc.stderr


def test_track_seeded_from_a_label_image_writes_lineage(tmp_path, lapse):
    seed = tmp_path / "frame0.tif"
    tifffile.imwrite(seed, lapse.labels[0].astype(np.uint16))
    video, _ = sample_paths()
    out = tmp_path / "o"
    assert main(["track", str(video), "--seed", str(seed), "--out", str(out), "--quiet"]) == 0
    rows = np.loadtxt(out / "ctc" / "res_track.txt", dtype=int, ndmin=2)
    assert set(rows[rows[:, 0] <= 8, 0]) == set(range(1, 9))
    assert (rows[:, 3] == 2).sum() == 2  # cell 2's two daughters


def test_segment_finds_the_cells_of_a_frame_from_the_command_line(tmp_path, lapse):
    assert main(["segment", "sample", "--frame", "0", "--out", str(tmp_path)]) == 0
    labels = tifffile.imread(tmp_path / "labels.tif")
    truth = [i for i in np.unique(lapse.labels[0]) if i]
    found = [i for i in truth if any(iou(labels == j, lapse.labels[0] == i) >= 0.5 for j in np.unique(labels) if j)]
    assert len(found) >= 0.7 * len(truth)


def test_automatic_seeding_tracks_the_cells_it_finds(shipped, lapse):
    session = shipped.open_video(lapse.frames[:8])
    ids = session.add_automatic_masks(0)
    assert len(ids) >= 6
    list(session.propagate_all())
    assert set(np.unique(session.labels()[-1])) - {0} <= set(ids)



@pytest.mark.parametrize("min_cycle, divides_again", [(10, False), (0, True)])
def test_a_young_daughter_does_not_divide_again(shipped, lapse, min_cycle, divides_again):
    """A daughter prompted with two separate cells holds both: a split of a cell younger than a
    cell cycle is a neighbour it spilled over, not a division (the control, min_cycle 0, shows
    that the same session does divide without the rule)."""
    from sam2_plugins.sample import interior_point

    f = 3
    first = lapse.labels[f]
    ids = [i for i in np.unique(first) if i]
    sizes = {i: (first == i).sum() for i in ids}
    a, b, c = sorted(ids, key=lambda i: -sizes[i])[:3]
    session = shipped.open_video(lapse.frames[:12])
    session.add_points(0, a, [interior_point(lapse.labels[0] == a)], [1])
    list(session.propagate_all())
    (kid_a, kid_bc) = session.divide(f, a, masks=[first == a, (first == b) | (first == c)])
    options = CellOptions(min_cycle_frames=min_cycle, new_cells_every=None)
    list(session.propagate_all(events=CellEvents(session, options)))
    again = [d for d in session.lineage.divisions() if d.mother == kid_bc]
    assert bool(again) == divides_again
