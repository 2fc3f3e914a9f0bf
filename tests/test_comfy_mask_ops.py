"""Mask helpers for inpainting graphs (sam2_plugins.mask_ops, used by the ComfyUI nodes): grow, shrink,
feather, bounding boxes; on MASK batches [B, H, W] and single masks, torch or numpy."""

import numpy as np
import pytest
import torch

from sam2_plugins.mask_ops import bounding_box_masks, feather, grow


def square(b=2, size=64, lo=20, hi=40):
    m = torch.zeros(b, size, size)
    m[:, lo:hi, lo:hi] = 1
    return m


def extent(mask: torch.Tensor) -> tuple[int, int, int, int]:
    ys, xs = torch.nonzero(mask > 0.5, as_tuple=True)
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def test_grow_and_shrink_by_pixels():
    m = square()
    grown = grow(m, 3)
    assert grown.shape == m.shape and grown.dtype == torch.float32
    assert extent(grown[0]) == (17, 17, 42, 42)  # 3 pixels on every side
    assert grown[0, 17, 17] == 0  # a round brush: the corner is rounded off
    shrunk = grow(m, -3)
    assert extent(shrunk[1]) == (23, 23, 36, 36)
    assert torch.equal(grow(grow(m, 3), -3), m)  # a square survives a closing by a disk
    assert torch.equal(grow(m * 0.7, 0), m)  # 0 pixels: the mask thresholded at 0.5


def test_shrink_at_the_frame_border_keeps_the_border_pixels_object():
    m = torch.ones(1, 16, 16)
    assert grow(m, -2).sum() == 16 * 16


def test_feather_makes_a_soft_edge():
    soft = feather(square(1), 6)[0]
    assert 0 <= float(soft.min()) and float(soft.max()) <= 1
    assert soft[30, 30] > 0.99 and soft[2, 2] < 0.01
    assert 0.3 < soft[30, 20] < 0.7  # the old edge is half way
    row = soft[30, 10:31]
    assert torch.all(row[1:] >= row[:-1] - 1e-6)  # rising towards the inside
    assert torch.equal(feather(square(1), 0), square(1))


def test_bounding_box_masks_with_padding_and_empty_masks():
    m = torch.zeros(3, 32, 48)
    m[0, 5:8, 10:12] = 1
    m[0, 20, 30] = 1  # an L-shaped spread: box from (10, 5) to (30, 20)
    m[1, 0:3, 45:48] = 1  # at the corner: padding stays inside the frame
    boxes = bounding_box_masks(m, padding=2)
    assert extent(boxes[0]) == (8, 3, 32, 22) and boxes[0].sum() == 25 * 20
    assert extent(boxes[1]) == (43, 0, 47, 4)
    assert boxes[2].sum() == 0


def test_single_numpy_mask_in_single_mask_out():
    m = np.zeros((20, 20), bool)
    m[5:10, 5:10] = True
    assert grow(m, 1).shape == (20, 20) and feather(m, 2).shape == (20, 20)
    assert bounding_box_masks(m).sum() == 25


@pytest.mark.parametrize("call, message", [
    (lambda: grow(torch.zeros(2, 2, 4, 4), 1), "masks must be"),
    (lambda: grow(torch.zeros(1, 4, 4), 1.5), "whole number of pixels"),
    (lambda: feather(torch.zeros(1, 4, 4), -1), "feather radius"),
    (lambda: bounding_box_masks(torch.zeros(1, 4, 4), -2), "padding"),
])
def test_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()
