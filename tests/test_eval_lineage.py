"""benchmarks/eval_lineage.py: the scorer gives 1.0 to the truth, the division matching follows
its documented rule, and a short real run gives finite scores in [0, 1]."""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ctc_metrics")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "eval_lineage.py"


@pytest.fixture(scope="module")
def ev():
    spec = importlib.util.spec_from_file_location("eval_lineage", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_division_matching_rule(ev):
    """A division found one frame late matches at +-1 and not at 0; a one-child link is no division."""
    T, H, W = 5, 12, 12
    a, b = np.zeros((H, W), bool), np.zeros((H, W), bool)
    a[2:6, 2:6], b[6:10, 6:10] = True, True
    truth = np.zeros((T, H, W), np.uint16)
    truth[:2][:, a | b] = 1  # mother on frames 0-1, daughters 2 and 3 from frame 2
    truth[2:][:, a], truth[2:][:, b] = 2, 3
    true_tracks = np.array([[1, 0, 1, 0], [2, 2, 4, 1], [3, 2, 4, 1]])
    late = truth.copy()
    late[2][a | b] = 1  # the mother lasts a frame longer
    late_tracks = np.array([[1, 0, 2, 0], [2, 3, 4, 1], [3, 3, 4, 1]])
    at0 = ev.match_divisions(late_tracks, late, true_tracks, truth, 0)
    at1 = ev.match_divisions(late_tracks, late, true_tracks, truth, 1)
    assert (at0["tp"], at0["fp"], at0["fn"]) == (0, 1, 1)
    assert (at1["tp"], at1["fp"], at1["fn"]) == (1, 0, 0) and at1["matches"][0]["offset"] == 1
    bridge = np.array([[1, 0, 1, 0], [2, 3, 4, 1]])  # one child: a gap bridge
    assert ev.ctc_divisions(bridge) == []
    wrong = truth.copy()
    wrong[2:][:, a] = 3  # daughters' masks swapped in part: one daughter covers both
    wrong[2:][:, b] = 2
    assert ev.match_divisions(true_tracks, wrong, true_tracks, truth, 1)["tp"] == 1  # pairing is one to one, either way
    one = truth.copy()
    one[2:][:, b] = 0
    one[2:][:, a | b] = 2
    assert ev.match_divisions(true_tracks, one, true_tracks, truth, 1)["tp"] == 0  # one daughter's mask only


def test_a_short_run_scores_the_truth_perfectly_and_the_engine_in_range(ev, tmp_path, capsys):
    out = ev.main(["--movies", "1", "--frames", "20", "--runs", "truth,clicks,plain",
                   "--json", str(tmp_path / "r.json"), "--keep", str(tmp_path / "work")])
    assert out["data"]["movies"][0]["divisions"], "the movie must hold a division"
    truth = out["summary"]["truth"]
    assert truth["TRA"] == truth["SEG"] == truth["DET"] == 1.0
    assert truth["div1"]["F1"] == truth["div0"]["F1"] == 1.0 and truth["div1"]["tp"] >= 1
    for run in ("clicks", "plain"):
        s = out["summary"][run]
        for key in ("TRA", "DET", "SEG"):
            assert math.isfinite(s[key]) and 0.0 <= s[key] <= 1.0, (run, key, s[key])
        for key in ("precision", "recall", "F1"):
            assert 0.0 <= s["div1"][key] <= 1.0
    assert out["summary"]["plain"]["div1"]["tp"] == 0  # no lineage: no division
    printed = capsys.readouterr().out
    assert "clicks" in printed and "TRA>=0.95" in printed
    gt = tmp_path / "work" / "movie000" / "GT"
    assert (gt / "TRA" / "man_track.txt").is_file() and (gt / "SEG" / "man_seg019.tif").is_file()
    assert (tmp_path / "r.json").is_file()
