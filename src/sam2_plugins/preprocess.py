"""From user pixels to the model's input tensor.

Model input for a model of size S: RGB in [0, 1] (uint8 / 255; other data is stretched,
see :mod:`sam2_plugins.intensity`), bilinear resize to S x S with antialiasing, then
ImageNet mean/std normalisation.
"""

from __future__ import annotations

import numpy as np
import torch

from .model.common import resize_bilinear

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def image_to_rgb01(image: np.ndarray, normalizer=None) -> np.ndarray:
    """A single image (H, W), (H, W, C) of any numeric dtype -> float32 (H, W, 3) in [0, 1].

    uint8 data is divided by 255; other dtypes get a per-channel percentile stretch unless a
    fitted ``normalizer`` (:class:`~sam2_plugins.intensity.IntensityNormalizer`) is given.
    """
    from .intensity import fit_normalizer

    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f"an image must be (H, W) or (H, W, C); got an array of shape {image.shape}")
    if image.ndim == 3 and image.shape[2] > 4:
        if image.shape[0] <= 4:
            raise ValueError(
                f"image of shape {image.shape} looks channels-first; pass (H, W, C) (e.g. np.moveaxis(img, 0, -1))"
            )
        raise ValueError(
            f"an image is (H, W) or (H, W, C) with at most 4 channels; got shape {image.shape}: a stack of "
            f"frames goes to open_video(), and for more channels pick up to three (image[..., [i, j, k]])"
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image has zero size: shape {image.shape}")
    if not (np.issubdtype(image.dtype, np.number) or image.dtype == bool):
        raise ValueError(f"image must hold numbers, got dtype {image.dtype}")
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
        raise ValueError("image contains NaN or infinite values")
    if normalizer is None:
        normalizer = fit_normalizer([image], image.dtype)
    return normalizer.apply(image)


def to_model_input(rgb01: "np.ndarray | torch.Tensor", size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(H, W, 3) or (B, H, W, 3) float RGB in [0, 1] -> normalised (B, 3, size, size) float32."""
    x = torch.as_tensor(rgb01, dtype=torch.float32, device=device)
    if x.ndim == 3:
        x = x[None]
    x = x.permute(0, 3, 1, 2)  # (B, 3, H, W)
    x = resize_bilinear(x, (size, size), antialias=True)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).reshape(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).reshape(1, 3, 1, 1)
    return (x - mean) / std
