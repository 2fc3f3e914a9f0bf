"""The engine reproduces Meta's SAM2ImagePredictor on every image case of the reference fixture."""

import numpy as np
import pytest

from conftest import assert_logits_match


def _cases(reference_cases):
    return {c["name"]: c for c in reference_cases["image_cases"]}


@pytest.mark.parametrize(
    "name", ["one_point_multimask", "pos_neg_points", "box", "box_and_point", "point_with_mask_input"]
)
def test_image_case_matches_reference(micro_model, reference, reference_cases, name):
    case = _cases(reference_cases)[name]
    kwargs = {}
    if "point_coords" in case:
        kwargs.update(points=case["point_coords"], labels=case["point_labels"])
    if "box" in case:
        kwargs["box"] = case["box"]
    if "mask_input" in case:
        kwargs["mask_logits"] = reference[case["mask_input"]]
    frame = reference["frames"][case["frame"]]  # raw uint8 RGB, through the public API
    pred = micro_model.predict_image(frame, multimask=case["multimask_output"], **kwargs)

    k = 3 if case["multimask_output"] else 1
    assert pred.masks.shape == (k, 96, 128) and pred.masks.dtype == bool
    assert_logits_match(pred.logits, reference[f"image/{name}/logits"], f"{name} logits")
    np.testing.assert_allclose(pred.scores, reference[f"image/{name}/iou"], atol=1e-4)
    if f"image/{name}/low_res_logits" in reference:
        assert_logits_match(pred.low_res_logits, reference[f"image/{name}/low_res_logits"], f"{name} low-res")
    np.testing.assert_array_equal(pred.masks, pred.logits > 0)


def test_second_click_reuses_the_embedding(micro_model, reference):
    frame = reference["frames"][0]
    micro_model.embeddings.clear()
    calls = []
    encoder = micro_model.network.image_encoder
    handle = encoder.register_forward_hook(lambda *a: calls.append(1))
    try:
        first = micro_model.predict_image(frame, points=[[35, 30]], labels=[1])
        second = micro_model.predict_image(frame, points=[[35, 30], [95, 65]], labels=[1, 0])
        emb = micro_model.embed_image(frame)
        third = micro_model.predict_image(emb, points=[[35, 30]], labels=[1])
    finally:
        handle.remove()
    assert len(calls) == 2  # once for the cached image, once for the explicit embed_image
    np.testing.assert_array_equal(first.logits, third.logits)
    assert not np.array_equal(first.logits, second.logits)


def test_low_res_logits_feed_back_as_mask_prompt(micro_model, reference):
    frame = reference["frames"][0]
    first = micro_model.predict_image(frame, points=[[40, 33]], labels=[1])
    again = micro_model.predict_image(frame, points=[[40, 33]], labels=[1], mask_logits=first.low_res_logits)
    assert again.logits.shape == first.logits.shape
    assert not np.allclose(again.logits, first.logits)
