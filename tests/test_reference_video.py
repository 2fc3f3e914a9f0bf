"""The video session reproduces Meta's SAM2VideoPredictor on every video case of the reference fixture."""

import pytest

from conftest import assert_logits_match

CASES = ["two_objects_forward_then_correct", "mask_on_last_frame_reverse", "prompt_mid_both_directions_max_frames"]


@pytest.mark.parametrize("name", CASES)
def test_video_case_matches_reference(micro_model, reference, reference_cases, name):
    case = next(c for c in reference_cases["video_cases"] if c["name"] == name)
    session = micro_model.open_video(reference["frames"])
    checked = 0
    for index, step in enumerate(case["steps"]):
        op = step["op"]
        if op == "points":
            results = [session.add_points(step["frame"], step["obj_id"], step["points"], step["labels"])]
        elif op == "box":
            results = [session.add_box(step["frame"], step["obj_id"], step["box"])]
        elif op == "mask":
            results = [session.add_mask(step["frame"], step["obj_id"], reference[step["mask"]])]
        else:
            results = list(
                session.propagate(step.get("start"), reverse=step.get("reverse", False), max_frames=step.get("max_frames"))
            )
            assert sorted(r.frame_index for r in results) == step["frames_out"]
        if op != "propagate":
            assert results[0].object_ids == step["obj_ids_out"]
        for result in results:
            for k, obj_id in enumerate(result.object_ids):
                key = f"video/{name}/{index}/frame{result.frame_index:02d}/obj{obj_id}"
                assert_logits_match(result.logits[k], reference[key], key)
                checked += 1
    expected = [k for k in reference.files if k.startswith(f"video/{name}/")]
    assert checked == len(expected)  # every reference output was produced and compared
    session.close()
