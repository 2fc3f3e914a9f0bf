"""predict_image input handling: dtypes, channels, and a clear ValueError for each bad input."""

import numpy as np
import pytest


@pytest.fixture(scope="module")
def frame(reference):
    return reference["frames"][0]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(points=[[200, 30]], labels=[1]), "outside the image"),
        (dict(points=[[-1, 30]], labels=[1]), "outside the image"),
        (dict(points=[[35, 30], [40, 40]], labels=[1]), "2 points but 1 labels"),
        (dict(), "empty prompt"),
        (dict(points=[[np.nan, 30]], labels=[1]), "NaN"),
        (dict(box=[60, 10, 20, 40]), "x1 < x0"),
        (dict(points=[[35, 30]], labels=[7]), "labels must be 1"),
        (dict(points=[[35, 30]]), "together"),
        (dict(mask_logits=np.zeros((32, 32))), "mask_logits must have shape"),
    ],
)
def test_bad_prompts_raise_clear_value_errors(micro_model, frame, kwargs, message):
    with pytest.raises(ValueError, match=message):
        micro_model.predict_image(frame, **kwargs)


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((4, 5, 6, 3), np.uint8), r"\(H, W\) or \(H, W, C\)"),
        (np.zeros(10, np.uint8), r"\(H, W\) or \(H, W, C\)"),
        (np.full((20, 20, 3), np.nan, np.float32), "NaN"),
        (np.zeros((0, 20, 3), np.uint8), "zero size"),
    ],
)
def test_bad_images_raise_clear_value_errors(micro_model, image, message):
    with pytest.raises(ValueError, match=message):
        micro_model.predict_image(image, points=[[1, 1]], labels=[1])


def test_grayscale_uint16_and_float_inputs(micro_model, frame):
    grey8 = frame.mean(axis=2).astype(np.uint8)
    as_rgb = micro_model.predict_image(np.repeat(grey8[..., None], 3, axis=2), points=[[35, 30]], labels=[1])
    as_grey = micro_model.predict_image(grey8, points=[[35, 30]], labels=[1])
    np.testing.assert_allclose(as_grey.logits, as_rgb.logits, atol=1e-5)

    # uint16 data with a narrow used range is stretched: scaling it changes nothing.
    grey16 = grey8.astype(np.uint16) * 7 + 1000
    a = micro_model.predict_image(grey16, points=[[35, 30]], labels=[1])
    b = micro_model.predict_image((grey16.astype(np.float32) * 3.5), points=[[35, 30]], labels=[1])
    np.testing.assert_allclose(a.logits, b.logits, atol=1e-3)
    assert a.masks.shape == (1, 96, 128)
