"""ComfyUI prompt formats (Points Editor / SAM 3 JSON, BOUNDING_BOX, BBOX, object ids) and their errors."""

import numpy as np
import pytest

from comfy_nodes.prompts import (
    ObjectPrompt,
    PromptError,
    build_prompts,
    check_prompts,
    parse_boxes,
    parse_object_ids,
    parse_points,
)


def test_points_editor_json_and_plain_lists():
    assert parse_points('[{"x": 10, "y": 20}, {"x": 30.5, "y": 4}]') == [(10.0, 20.0), (30.5, 4.0)]
    assert parse_points("[[10, 20], [3, 4]]") == [(10.0, 20.0), (3.0, 4.0)]
    assert parse_points([[10, 20]]) == [(10.0, 20.0)]
    assert parse_points([10, 20]) == [(10.0, 20.0)]
    assert parse_points("") == [] and parse_points(None) == [] and parse_points("  ") == []


@pytest.mark.parametrize("text, message", [
    ('[{"x": 10, "y": }]', "not valid JSON"),
    ('[{"x": 10}]', 'must have "x" and "y"'),
    ('[{"x": "a", "y": 3}]', "must be numbers"),
    ("[[1, 2, 3]]", "must be {"),
    ('{"points": 3}', 'must have "x" and "y"'),
    ("7", "must be a list of points"),
])
def test_malformed_points_name_the_input(text, message):
    with pytest.raises(PromptError, match="positive_coords") as err:
        parse_points(text, "positive_coords")
    assert message in str(err.value)


def test_bounding_box_dicts_and_bbox_lists():
    box = {"x": 10, "y": 20, "width": 30, "height": 40}
    assert parse_boxes(box) == [(10.0, 20.0, 40.0, 60.0)]
    assert parse_boxes([box, {"x": 0, "y": 0, "width": 5, "height": 5}]) == [(10, 20, 40, 60), (0, 0, 5, 5)]
    per_frame = parse_boxes([[box], [], [box, box]])
    assert per_frame == [[(10, 20, 40, 60)], [], [(10, 20, 40, 60), (10, 20, 40, 60)]]
    assert parse_boxes([1, 2, 3, 4]) == [(1, 2, 3, 4)]
    assert parse_boxes([[1, 2, 3, 4], [5, 6, 7, 8]]) == [(1, 2, 3, 4), (5, 6, 7, 8)]
    assert parse_boxes([[[1, 2, 3, 4]], [[5, 6, 7, 8]]]) == [[(1, 2, 3, 4)], [(5, 6, 7, 8)]]
    with pytest.raises(PromptError, match="x1 < x0"):
        parse_boxes([5, 0, 1, 4])
    with pytest.raises(PromptError, match="without width"):
        parse_boxes({"x": 1, "y": 2, "height": 3})


def test_object_ids():
    assert parse_object_ids("") is None and parse_object_ids(None) is None
    assert parse_object_ids("3, 1; 5-7") == [1, 3, 5, 6, 7]
    with pytest.raises(PromptError, match="'a' is not an object id"):
        parse_object_ids("1, a")
    with pytest.raises(PromptError, match="range"):
        parse_object_ids("5-2")


def test_objects_from_direct_inputs():
    mask = np.zeros((2, 8, 8), np.float32)
    mask[:, 2:4, 2:4] = 1
    got = build_prompts(frame=3, positive='[{"x": 1, "y": 2}]', negative="[[5, 5]]",
                        boxes=[[0, 0, 4, 4], [2, 2, 6, 6]], masks=mask, first_id=4)
    assert [(p.obj_id, p.frame) for p in got] == [(4, 3), (5, 3), (6, 3), (7, 3)]
    assert got[0].points == ((1.0, 2.0), (5.0, 5.0)) and got[0].labels == (1, 0) and got[0].box == (0, 0, 4, 4)
    assert got[1].points == () and got[1].box == (2, 2, 6, 6)
    assert got[2].mask.shape == (8, 8) and got[2].mask.sum() == 4
    with pytest.raises(PromptError, match="negative_coords alone"):
        build_prompts(negative="[[1, 1]]")


def test_boxes_per_frame_go_on_their_frames():
    got = build_prompts(frame=0, boxes=[[[0, 0, 4, 4]], [], [[1, 1, 5, 5], [2, 2, 6, 6]]])
    assert [(p.obj_id, p.frame, p.box) for p in got] == [(1, 0, (0, 0, 4, 4)), (1, 2, (1, 1, 5, 5)),
                                                          (2, 2, (2, 2, 6, 6))]


@pytest.mark.parametrize("prompt, message", [
    (ObjectPrompt(1, 0, ((70.0, 5.0),), (1,)), "point (70, 5) is outside the 64x48 frame"),
    (ObjectPrompt(1, 0, box=(0, 0, 65, 10)), "is outside the 64x48 frame"),
    (ObjectPrompt(1, 9, ((5.0, 5.0),), (1,)), "frame 9 is outside the 4 frame"),
    (ObjectPrompt(1, 0, mask=np.ones((10, 10), bool)), "mask is 10x10 but the frames are 64x48"),
    (ObjectPrompt(1, 0, mask=np.zeros((48, 64), bool)), "mask is empty"),
    (ObjectPrompt(1, 0), "the prompt is empty"),
    (ObjectPrompt(70000, 0, ((5.0, 5.0),), (1,)), "object ids go from 1 to 65535"),
])
def test_bad_prompts_are_refused_with_the_reason(prompt, message):
    with pytest.raises(PromptError) as err:
        check_prompts([prompt], num_frames=4, height=48, width=64)
    assert message in str(err.value)


def test_no_prompt_at_all():
    with pytest.raises(PromptError, match="no prompt given"):
        check_prompts([], 4, 48, 64)
