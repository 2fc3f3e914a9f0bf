"""Automatic masks (``sam2_plugins.automask``) with the real engine and the shipped micro model.

The quality floors are set below what the shipped model measures on these frames (see
``docs/automask.md``); ``python tests/test_automask.py`` prints the figures on a wider seed set.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from sam2_plugins.automask import AutoMask, AutoMaskSettings, generate_masks, masks_to_labels, uncovered_masks
from sam2_plugins.automask_ops import box_iou, box_nms, crop_boxes, mask_boxes, remove_small_regions, stability_scores
from sam2_plugins.synthetic import make_scene_video, make_timelapse

MIN_GT_AREA = 30  # ground-truth cells smaller than this are slivers entering or leaving the field
CELL_SEEDS = (0, 1, 2, 3)
SCENE_SEEDS = (0, 1, 2, 3)


def cell_frame(seed: int) -> tuple[np.ndarray, np.ndarray]:
    tl = make_timelapse(seed, num_frames=1, height=192, width=192, num_cells=8, dtype=np.uint16)
    return tl.frames[0], tl.labels[0]


def scene_frame(seed: int) -> tuple[np.ndarray, np.ndarray]:
    sv = make_scene_video(seed, num_frames=1, num_objects=3)
    return sv.frames[0], sv.labels[0]


def match(masks: list[AutoMask], gt: np.ndarray, min_iou: float = 0.5) -> tuple[int, int, int]:
    """(matched, ground-truth objects, predictions): one-to-one matching at mask IoU >= min_iou, best first."""
    ids = [int(i) for i in np.unique(gt) if i and np.count_nonzero(gt == i) >= MIN_GT_AREA]
    pairs = []
    for g in ids:
        gm = gt == g
        for j, m in enumerate(masks):
            inter = np.count_nonzero(gm & m.mask)
            if inter:
                iou = inter / np.count_nonzero(gm | m.mask)
                if iou >= min_iou:
                    pairs.append((iou, g, j))
    used_g, used_j = set(), set()
    for _, g, j in sorted(pairs, reverse=True):
        if g not in used_g and j not in used_j:
            used_g.add(g)
            used_j.add(j)
    return len(used_g), len(ids), len(masks)


@pytest.fixture(scope="module")
def model():
    """The shipped model, on one torch thread for this module (small batched decoder ops: one thread is
    as fast and immune to a busy machine)."""
    import torch

    from sam2_plugins import load_model

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield load_model("micro-synthetic")
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def cell_runs(model):
    runs = []
    for seed in CELL_SEEDS:
        frame, gt = cell_frame(seed)
        runs.append((frame, gt, generate_masks(model, frame, AutoMaskSettings.for_cells())))
    return runs


# ---------------------------------------------------------------------------------------------- quality
def test_cells_found_with_few_false_positives(cell_runs):
    # measured here: recall 27/32 = 0.84, precision 27/29 = 0.93 (bfloat16 on a 2-core AMD EPYC)
    tp = n_gt = n_pred = 0
    for _, gt, masks in cell_runs:
        a, b, c = match(masks, gt)
        tp, n_gt, n_pred = tp + a, n_gt + b, n_pred + c
    assert tp / n_gt >= 0.7, f"recall {tp}/{n_gt}"
    assert tp / n_pred >= 0.8, f"precision {tp}/{n_pred}"


def test_scene_objects_found(model):
    # measured here: recall 10/12 = 0.83, precision 10/10
    settings = AutoMaskSettings.for_cells(box_nms_thresh=0.7)  # scene objects overlap: Meta's NMS threshold
    tp = n_gt = n_pred = 0
    for seed in SCENE_SEEDS:
        frame, gt = scene_frame(seed)
        a, b, c = match(generate_masks(model, frame, settings), gt)
        tp, n_gt, n_pred = tp + a, n_gt + b, n_pred + c
    assert tp / n_gt >= 0.6, f"recall {tp}/{n_gt}"
    assert tp / n_pred >= 0.7, f"precision {tp}/{n_pred}"


def test_results_are_consistent(cell_runs):
    settings = AutoMaskSettings.for_cells()
    for frame, _, masks in cell_runs:
        assert masks, "no mask at all"
        ious = [m.predicted_iou for m in masks]
        assert ious == sorted(ious, reverse=True)
        for m in masks:
            assert m.mask.shape == frame.shape and m.mask.dtype == bool
            assert m.area == np.count_nonzero(m.mask) >= settings.min_mask_region_area
            x0, y0, x1, y1 = m.box
            assert m.mask[y0:y1, x0:x1].sum() == m.area
            assert m.mask[y0].any() and m.mask[y1 - 1].any() and m.mask[:, x0].any() and m.mask[:, x1 - 1].any()
            assert m.predicted_iou > settings.pred_iou_thresh
            assert m.stability_score >= settings.stability_score_thresh
            assert m.crop_box == (0, 0, frame.shape[1], frame.shape[0])
            assert 0 <= m.point[0] < frame.shape[1] and 0 <= m.point[1] < frame.shape[0]
        boxes = np.array([m.box for m in masks])
        for i in range(len(boxes)):  # no duplicates left: NMS ran
            assert (box_iou(boxes[i], np.delete(boxes, i, axis=0)) <= settings.box_nms_thresh + 1e-9).all()


# ---------------------------------------------------------------------------------------------- NMS, scores
def test_box_nms_hand_computed():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 5]])
    scores = np.array([0.9, 0.95, 0.5, 0.8])
    # IoU(A, B) = 90 / 110 = 0.818; IoU(A, D) = 50 / 100 = 0.5; IoU(B, D) = 45 / 105 = 0.429
    assert box_iou(boxes[0], boxes[1:]) == pytest.approx([90 / 110, 0.0, 0.5])
    assert box_nms(boxes, scores, 0.7).tolist() == [1, 3, 2]  # B removes A; D (0.43 with B) and C stay
    assert box_nms(boxes, scores, 0.85).tolist() == [1, 0, 3, 2]  # nothing above 0.85
    assert box_nms(boxes, scores, 0.4).tolist() == [1, 2]  # B removes A and D
    assert box_nms(np.zeros((0, 4)), np.zeros(0), 0.7).tolist() == []


def test_identical_masks_become_one():
    mask = np.zeros((40, 50), dtype=bool)
    mask[5:20, 10:30] = True
    import torch

    boxes = mask_boxes(torch.as_tensor(np.stack([mask, mask, np.zeros_like(mask)]))).numpy()
    assert boxes.tolist() == [[10, 5, 30, 20], [10, 5, 30, 20], [0, 0, 0, 0]]
    assert box_nms(boxes[:2], [0.7, 0.9], 0.7).tolist() == [1]


def test_stability_score_hand_computed():
    import torch

    logits = torch.full((2, 4, 4), -5.0)
    logits[0, 0, :2] = 3.0  # 2 pixels above +1
    logits[0, 1, :] = 0.5  # 4 more above -1
    logits[1, :2, :2] = 4.0  # a sharp mask: stable
    scores = stability_scores(logits, 0.0, 1.0)
    assert scores.tolist() == pytest.approx([2 / 6, 1.0])
    assert stability_scores(torch.full((1, 3, 3), -9.0), 0.0, 1.0).tolist() == [1.0]  # empty: no division by 0


def test_raising_thresholds_removes_masks(model):
    frame, _ = cell_frame(5)
    loose = AutoMaskSettings.for_cells(points_per_side=8, pred_iou_thresh=0.0, stability_score_thresh=0.0)
    base = generate_masks(model, frame, loose)
    by_iou = generate_masks(model, frame, AutoMaskSettings.for_cells(
        points_per_side=8, pred_iou_thresh=0.75, stability_score_thresh=0.0))
    by_stability = generate_masks(model, frame, AutoMaskSettings.for_cells(
        points_per_side=8, pred_iou_thresh=0.0, stability_score_thresh=0.8))
    assert 0 < len(by_iou) < len(base) and all(m.predicted_iou > 0.75 for m in by_iou)
    assert 0 < len(by_stability) < len(base) and all(m.stability_score >= 0.8 for m in by_stability)
    assert min(m.predicted_iou for m in base) <= 0.75 and min(m.stability_score for m in base) < 0.8


# ---------------------------------------------------------------------------------------------- crops, areas
def test_crops_give_masks_in_image_coordinates(model):
    frame, gt = cell_frame(6)
    settings = AutoMaskSettings.for_cells(points_per_side=8, crop_n_layers=1)
    calls = []
    masks = generate_masks(model, frame, settings, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (5, 5)  # the whole image and 2 x 2 crops, 64 points each: one batch each
    crops = {box for box, _ in crop_boxes(192, 192, 1, settings.crop_overlap_ratio)}
    assert len(crops) == 5
    assert any(m.crop_box != (0, 0, 192, 192) for m in masks), "no mask from a crop survived"
    for m in masks:
        assert m.mask.shape == frame.shape and m.crop_box in crops
        x0, y0, x1, y1 = m.crop_box
        assert m.mask[y0:y1, x0:x1].sum() == m.area  # pasted inside its crop
        assert x0 <= m.point[0] < x1 and y0 <= m.point[1] < y1
    # masks of crops land on the cells of the full frame
    tp, n_gt, _ = match([m for m in masks if m.crop_box != (0, 0, 192, 192)], gt)
    assert tp >= 1


def test_remove_small_regions_hand_case():
    mask = np.zeros((30, 30), dtype=bool)
    mask[2:20, 2:20] = True
    mask[8:10, 8:10] = False  # a 4-pixel hole
    mask[25:27, 25:27] = True  # a 4-pixel island
    out, changed = remove_small_regions(mask, 10)
    assert changed and out[8:10, 8:10].all() and not out[25:, 25:].any() and out.sum() == 18 * 18
    same, changed = remove_small_regions(mask, 4)  # nothing smaller than 4
    assert not changed and same is mask
    tiny = np.zeros((10, 10), dtype=bool)
    tiny[1, 1] = tiny[5, 5] = tiny[5, 6] = True
    out, _ = remove_small_regions(tiny, 10)  # every island small: the largest stays
    assert out.sum() == 2 and out[5, 5] and out[5, 6]


def test_min_area_removes_small_masks(model):
    frame, _ = cell_frame(5)
    loose = AutoMaskSettings.for_cells(points_per_side=8, min_mask_region_area=0, pred_iou_thresh=0.3,
                                       stability_score_thresh=0.5)
    masks = generate_masks(model, frame, loose)
    areas = sorted(m.area for m in masks)
    assert len(areas) >= 2 and areas[0] < areas[-1]
    cut = areas[0] + 1
    kept = generate_masks(model, frame, AutoMaskSettings.for_cells(
        points_per_side=8, min_mask_region_area=cut, pred_iou_thresh=0.3, stability_score_thresh=0.5))
    assert kept and all(m.area >= cut for m in kept)
    assert len(kept) < len(masks)


# ---------------------------------------------------------------------------------------------- errors, cancel
@pytest.mark.parametrize("field, value", [
    ("points_per_side", 0),
    ("points_per_batch", 2.5),
    ("pred_iou_thresh", 1.5),
    ("stability_score_thresh", -0.1),
    ("stability_score_offset", float("nan")),
    ("box_nms_thresh", "0.7"),
    ("crop_n_layers", -1),
    ("crop_overlap_ratio", 1.0),
    ("min_mask_region_area", True),
    ("multimask_output", "yes"),
])
def test_bad_settings_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"AutoMaskSettings.{field}"):
        AutoMaskSettings(**{field: value})


def test_downscaled_crop_grid_without_points_is_refused():
    with pytest.raises(ValueError, match="crop_n_points_downscale_factor"):
        AutoMaskSettings(points_per_side=4, crop_n_layers=2, crop_n_points_downscale_factor=4)


def test_stack_of_frames_is_refused(model):
    with pytest.raises(ValueError, match=r"\(5, 64, 64\)"):
        generate_masks(model, np.zeros((5, 64, 64), np.uint16))
    with pytest.raises(TypeError, match="AutoMaskSettings"):
        generate_masks(model, np.zeros((64, 64), np.uint8), {"points_per_side": 4})


def test_cancel_after_first_batch_returns_partial_list(model):
    frame, _ = cell_frame(7)
    settings = AutoMaskSettings.for_cells(points_per_batch=64)  # 256 points: 4 batches
    full = generate_masks(model, frame, settings)
    stop = threading.Event()
    calls = []

    def progress(done, total):
        calls.append((done, total))
        stop.set()

    partial = generate_masks(model, frame, settings, progress=progress, cancel=stop)
    assert calls == [(1, 4)]
    assert 0 < len(partial) < len(full)
    assert all(m.point[1] < 192 / 4 for m in partial)  # the first batch: the grid's top 4 rows
    assert generate_masks(model, frame, settings, cancel=lambda: True) == []


# ---------------------------------------------------------------------------------------------- label images
def _auto(mask: np.ndarray, iou: float) -> AutoMask:
    from sam2_plugins.automask_ops import mask_box

    return AutoMask(mask, int(mask.sum()), mask_box(mask), iou, 0.9, (0.0, 0.0), (0, 0, *mask.shape[::-1]))


def test_masks_to_labels_best_score_wins():
    big = np.zeros((20, 20), bool)
    big[2:18, 2:18] = True
    small = np.zeros((20, 20), bool)
    small[5:9, 5:9] = True
    apart = np.zeros((20, 20), bool)
    apart[0, 19] = True
    labels = masks_to_labels([_auto(big, 0.7), _auto(small, 0.9), _auto(apart, 0.8)], (20, 20))
    assert labels.dtype == np.uint16 and labels.shape == (20, 20)
    assert (labels[5:9, 5:9] == 1).all()  # best score, id 1, on top of the big one
    assert labels[0, 19] == 2
    assert (labels[big & ~small] == 3).all() and labels[0, 0] == 0
    # a worse small mask under a better big one leaves no pixel
    labels = masks_to_labels([_auto(big, 0.9), _auto(small, 0.7)], (20, 20))
    assert set(np.unique(labels)) == {0, 1}
    with pytest.raises(ValueError, match="shape"):
        masks_to_labels([_auto(big, 0.9)], (10, 10))


def test_uncovered_masks_are_the_new_objects(cell_runs):
    frame, gt, masks = cell_runs[0]
    ids = [i for i in np.unique(gt) if i]
    tracked = np.where(np.isin(gt, ids[::2]), gt, 0)  # half the cells are tracked already
    new = uncovered_masks(masks, tracked, max_overlap=0.2)
    assert new and len(new) < len(masks)
    for m in new:
        assert np.count_nonzero(m.mask & (tracked > 0)) <= 0.2 * m.area
    tracked_matched, _, _ = match(new, tracked)
    assert tracked_matched == 0  # no tracked cell comes back as new
    untracked = np.where(np.isin(gt, ids[1::2]), gt, 0)
    assert match(new, untracked)[0] >= 1
    assert uncovered_masks(masks, np.zeros_like(gt), 0.0) == masks
    assert uncovered_masks(masks, np.ones_like(gt), 0.99) == []
    with pytest.raises(ValueError, match="max_overlap"):
        uncovered_masks(masks, tracked, 1.5)


# ---------------------------------------------------------------------------------------------- measurement
def measure(seeds_cells=range(200, 264), seeds_scenes=range(200, 232)) -> None:
    """Recall and precision (mask IoU >= 0.5) of the presets on a wider seed set, and time per frame
    (one torch thread)."""
    import time

    import torch

    from sam2_plugins import load_model

    torch.set_num_threads(1)
    m = load_model("micro-synthetic")
    for name, frames, settings in (
        ("cells", (cell_frame(s) for s in seeds_cells), AutoMaskSettings.for_cells()),
        ("scenes", (scene_frame(s) for s in seeds_scenes), AutoMaskSettings.for_cells(box_nms_thresh=0.7)),
    ):
        tp = n_gt = n_pred = 0
        seconds = []
        for frame, gt in frames:
            t0 = time.perf_counter()
            masks = generate_masks(m, frame, settings)
            seconds.append(time.perf_counter() - t0)
            a, b, c = match(masks, gt)
            tp, n_gt, n_pred = tp + a, n_gt + b, n_pred + c
        print(f"{name}: {len(seconds)} frames, recall {tp / n_gt:.3f} ({tp}/{n_gt}), "
              f"precision {tp / max(n_pred, 1):.3f} ({tp}/{n_pred}), {np.median(seconds):.2f} s a frame (median)")


if __name__ == "__main__":
    measure()
