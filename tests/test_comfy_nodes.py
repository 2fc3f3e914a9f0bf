"""The ComfyUI nodes' logic on ComfyUI tensors (IMAGE [B, H, W, C] float 0..1, MASK [B, H, W]), with the
shipped micro model on a synthetic scene with exact truth. The V3 classes themselves are checked in a
real ComfyUI by scripts/check_comfyui.py (tests/test_comfy_real.py)."""

import numpy as np
import pytest
import torch
from scipy import ndimage as ndi

from comfy_nodes.prompts import ObjectPrompt, PromptError, build_prompts
from comfy_nodes.segment import segment_everything, segment_images
from comfy_nodes.video import select_masks, track_video
from sam2_plugins import load_model
from sam2_plugins.automask import AutoMaskSettings
from sam2_plugins.synthetic import make_scene_video

FLOOR = 0.7  # mask IoU with the truth the micro model reaches on these scenes (typically 0.8-0.95)


@pytest.fixture(scope="module")
def model():
    return load_model("micro-synthetic", device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def scene():
    sv = make_scene_video(3, num_frames=16, num_objects=2)
    images = torch.from_numpy(sv.frames).float() / 255  # what LoadImage / VHS give: float RGB in [0, 1]
    return images, sv.labels


def inside(labels: np.ndarray, obj: int) -> list[int]:
    """The pixel deepest inside an object: a click a user would make."""
    d = ndi.distance_transform_edt(np.pad(labels == obj, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(d.argmax(), d.shape)
    return [int(x), int(y)]


def iou(mask, truth) -> float:
    m = np.asarray(mask) > 0.5
    return float((m & truth).sum() / max((m | truth).sum(), 1))


def clicks(labels, frame, obj, obj_id=None):
    return ObjectPrompt(obj_id or obj, frame, (tuple(inside(labels[frame], obj)),), (1,))


def test_segment_images_union_and_per_object(model, scene):
    images, labels = scene
    prompts = [ObjectPrompt(p.obj_id, i, p.points, p.labels) for i in range(3)
               for p in (clicks(labels, i, 1), clicks(labels, i, 2))]
    union, ids = segment_images(model, images[:3], prompts)
    assert union.shape == (3, 192, 256) and union.dtype == torch.float32 and ids == [1, 2]
    for i in range(3):
        assert iou(union[i], labels[i] > 0) > FLOOR
    each, ids = segment_images(model, images[:3], prompts, individual=True)
    assert each.shape == (6, 192, 256)  # image-major: image 0 object 1, image 0 object 2, image 1 object 1...
    for i in range(3):
        for k, obj in enumerate(ids):
            assert iou(each[2 * i + k], labels[i] == obj) > FLOOR
            assert iou(each[2 * i + k], labels[i] == 3 - obj) < 0.1


def test_points_editor_json_with_a_negative_click(model, scene):
    images, labels = scene
    x, y = inside(labels[0], 2)
    prompts = build_prompts(frame=-1, positive=f'[{{"x": {x}, "y": {y}}}]', negative='[{"x": 160, "y": 60}]')
    masks, _ = segment_images(model, images[:1], prompts)
    assert iou(masks[0], labels[0] == 2) > FLOOR


def test_track_forward_per_object_ids(model, scene):
    images, labels = scene
    progress = []
    combined, tracks, preview = track_video(model, images, [clicks(labels, 0, 1, 5), clicks(labels, 0, 2, 9)],
                                            progress=lambda d, t: progress.append((d, t)))
    assert tracks.object_ids == [5, 9] and tracks.frames_done == list(range(16))
    assert progress[-1] == (16, 16) and len(progress) == 16
    only_9 = select_masks(tracks, [9])
    for f in range(16):
        assert iou(combined[f], labels[f] > 0) > FLOOR
        assert iou(select_masks(tracks, [5])[f], labels[f] == 1) > FLOOR
        assert iou(only_9[f], labels[f] == 2) > FLOOR
    assert preview.shape == (16, 192, 256, 3)
    obj = labels[4] == 2
    assert torch.equal(preview[4][torch.from_numpy(~(labels[4] > 0) & (combined[4].numpy() < 0.5))],
                       images[4][torch.from_numpy(~(labels[4] > 0) & (combined[4].numpy() < 0.5))])
    assert (preview[4][torch.from_numpy(obj)] - images[4][torch.from_numpy(obj)]).abs().mean() > 0.05
    with pytest.raises(PromptError, match="object id 3 was never prompted; the tracked objects are 5, 9"):
        select_masks(tracks, [3])


def test_track_masks_output_selects_ids(model, scene):
    images, labels = scene
    combined, _, small = track_video(model, images[:6], [clicks(labels, 0, 1), clicks(labels, 0, 2)],
                                     object_ids=[2], preview="half")
    assert small.shape == (6, 96, 128, 3)
    for f in range(6):
        assert iou(combined[f], labels[f] == 2) > FLOOR
    with pytest.raises(PromptError, match="object id 4 was never prompted"):
        track_video(model, images[:6], [clicks(labels, 0, 1)], object_ids=[4])


def test_track_backward_from_the_last_frame(model, scene):
    images, labels = scene
    combined, tracks, _ = track_video(model, images, [clicks(labels, 15, 1)], direction="backward", preview="off")
    assert tracks.frames_done == list(range(16))
    assert np.mean([iou(combined[f], labels[f] == 1) for f in range(16)]) > FLOOR
    assert iou(combined[0], labels[0] == 1) > FLOOR


def test_track_both_ways_from_a_middle_frame_with_a_mask_prompt(model, scene):
    images, labels = scene
    mask = torch.from_numpy((labels[8] == 2)[None].astype(np.float32))  # a MASK batch of one object
    prompts = build_prompts(frame=8, masks=mask)
    combined, tracks, _ = track_video(model, images, prompts, direction="both", start_frame=8, preview="off")
    assert tracks.frames_done == list(range(16))
    assert min(iou(combined[f], labels[f] == 2) for f in range(16)) > FLOOR - 0.1
    forward_only, tracks, _ = track_video(model, images, prompts, direction="forward", start_frame=8, preview="off")
    assert tracks.frames_done == list(range(8, 16)) and forward_only[:8].sum() == 0


def test_interrupt_stops_within_one_frame(model, scene):
    images, labels = scene
    done = []

    class Interrupted(Exception):
        pass

    def interrupt():
        if len(done) >= 3:
            raise Interrupted

    with pytest.raises(Interrupted):
        track_video(model, images, [clicks(labels, 0, 1)], progress=lambda d, t: done.append(d),
                    check_interrupt=interrupt)
    assert done == [1, 2, 3]  # the frame in progress when the user pressed Cancel, and no more


@pytest.mark.parametrize("make, message", [
    (lambda im: im[:0], "zero frames"),
    (lambda im: im[..., :2], "1, 3 or 4 channels"),
    (lambda im: im[0], r"IMAGE \[B, H, W, C\] with 1, 3 or 4 channels, got shape \[192, 256, 3\]"),
])
def test_bad_images_are_refused(model, scene, make, message):
    images, labels = scene
    with pytest.raises(PromptError, match=message):
        track_video(model, make(images), [clicks(labels, 0, 1)])


def test_bad_prompts_are_refused_before_work(model, scene):
    images, labels = scene
    with pytest.raises(PromptError, match="outside the 256x192 frame"):
        track_video(model, images, build_prompts(positive="[[300, 10]]"))
    with pytest.raises(PromptError, match="no prompt given"):
        track_video(model, images, build_prompts(positive=""))
    with pytest.raises(PromptError, match="mask is 64x64 but the frames are 256x192"):
        track_video(model, images, build_prompts(masks=torch.ones(1, 64, 64)))
    with pytest.raises(PromptError, match="not valid JSON"):
        build_prompts(positive='[{"x": 1 "y": 2}]')
    with pytest.raises(PromptError, match="start_frame 40 is outside"):
        track_video(model, images, [clicks(labels, 0, 1)], start_frame=40)


def test_segment_everything_finds_the_objects(model, scene):
    images, labels = scene
    settings = AutoMaskSettings.for_cells(box_nms_thresh=0.7)  # the micro model's measured preset
    masks, counts = segment_everything(model, images[:1], settings, max_objects=6)
    assert masks.shape[1:] == (192, 256) and 1 <= counts[0] <= 6 and masks.shape[0] == counts[0]
    best = {obj: max(iou(m, labels[0] == obj) for m in masks) for obj in (1, 2)}
    assert max(best.values()) > FLOOR, best
