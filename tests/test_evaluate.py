"""The evaluation's scoring rules on hand-made label stacks (no model involved)."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1] / "recipes"))
from evaluate import score_tracks  # noqa: E402

T, H, W = 6, 12, 40
MOTHER, LEFT, RIGHT, OTHER = 1, 2, 3, 4
LINEAGE = {MOTHER: 0, LEFT: MOTHER, RIGHT: MOTHER, OTHER: 0}  # the mother divides on frame 3


def _labels() -> np.ndarray:
    labels = np.zeros((T, H, W), np.uint16)
    labels[:3, 2:10, 4:16] = MOTHER
    labels[3:, 2:10, 4:10] = LEFT
    labels[3:, 2:10, 10:16] = RIGHT
    labels[:, 2:10, 26:36] = OTHER
    return labels


def _follow(labels: np.ndarray, ids_per_frame: list[int]) -> np.ndarray:
    """A predicted track that sits exactly on the given cell on each frame (0: empty)."""
    return np.stack([labels[t] == i if i else np.zeros((H, W), bool) for t, i in enumerate(ids_per_frame)])


def test_a_track_flipping_between_the_clicked_cells_daughters_is_not_an_identity_switch():
    labels = _labels()
    flips = _follow(labels, [MOTHER] * 3 + [LEFT, RIGHT, LEFT])
    score = score_tracks({MOTHER: flips}, labels, LINEAGE)[MOTHER]
    assert score.switches == 0
    assert score.ious == [1.0, 1.0, 1.0]  # frames after the division are not the clicked cell's


def test_a_track_that_jumps_to_another_cell_is_counted_once_per_jump():
    labels = _labels()
    masks = {
        MOTHER: _follow(labels, [MOTHER] * 3 + [OTHER] * 3),  # leaves its lineage for a stranger
        OTHER: _follow(labels, [OTHER] * 3 + [LEFT, 0, OTHER]),  # onto a daughter of another cell and back
    }
    scores = score_tracks(masks, labels, LINEAGE)
    assert scores[MOTHER].switches == 1
    assert scores[OTHER].switches == 2
    assert np.mean(scores[OTHER].ious) == 4 / 6  # empty frames cost Jaccard, not a switch


def test_without_a_lineage_every_change_of_matched_object_is_a_switch():
    labels = _labels()
    flips = _follow(labels, [MOTHER] * 3 + [LEFT, RIGHT, LEFT])
    assert score_tracks({MOTHER: flips}, labels)[MOTHER].switches == 3
