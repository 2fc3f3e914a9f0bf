"""Single-image prediction: embed an image once, then decode masks for any prompt in milliseconds."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from .lru import ByteLRU
from .model.common import resize_bilinear
from .model.sam2 import ImageFeatures
from .preprocess import image_to_rgb01, to_model_input
from .prompts import validate_box, validate_points

if TYPE_CHECKING:
    from .engine import Sam2


@dataclass
class ImageEmbedding:
    """Cached encoder output of one image; pass it to :meth:`Sam2.predict_image` again and again."""

    features: ImageFeatures  # embed already holds the no-memory embedding
    original_size: tuple[int, int]  # (H, W) of the user's image


@dataclass
class ImagePrediction:
    masks: np.ndarray  # (K, H, W) bool
    logits: np.ndarray  # (K, H, W) float32 at the image's resolution
    scores: np.ndarray  # (K,) predicted IoU
    low_res_logits: np.ndarray  # (K, S/4, S/4) float32, clamped to +-32; feed back as mask_logits


class EmbeddingCache(ByteLRU[str, ImageEmbedding]):
    """The last image embeddings, keyed by a fingerprint of the pixels and of the weights."""

    def __init__(self, max_bytes: int = 256 << 20) -> None:
        super().__init__(max_bytes, lambda emb: emb.features.nbytes)

    @staticmethod
    def key(image: np.ndarray, weights_version: int) -> str:
        digest = hashlib.blake2b(np.ascontiguousarray(image).view(np.uint8).ravel(), digest_size=16)
        return f"{image.shape}{image.dtype}{digest.hexdigest()}@{weights_version}"


@torch.inference_mode()
def embed_image(model: "Sam2", image: np.ndarray, normalizer=None) -> ImageEmbedding:
    """Run the image encoder once on ``image`` (see :func:`~sam2_plugins.preprocess.image_to_rgb01`)."""
    rgb = image_to_rgb01(image, normalizer)
    net = model.network
    with model.precision():
        pixels = to_model_input(rgb, net.image_size, model.device)
        feats = net.encode_image(pixels)
        feats = ImageFeatures(net.without_memory(feats), feats.pos, feats.high_res)
    return ImageEmbedding(feats, (rgb.shape[0], rgb.shape[1]))


@torch.inference_mode()
def predict_image(
    model: "Sam2",
    image: "np.ndarray | ImageEmbedding",
    *,
    points=None,
    labels=None,
    box=None,
    mask_logits=None,
    multimask: bool = False,
) -> ImagePrediction:
    """Masks for one object from clicks ((x, y) pixels, labels 1/0), a box (x0, y0, x1, y1) and/or mask logits."""
    if isinstance(image, ImageEmbedding):
        emb = image
    else:
        image = np.asarray(image)
        key = EmbeddingCache.key(image, model.network.weights_version())  # new weights: new embedding
        emb = model.embeddings.get(key)
        if emb is None:
            emb = embed_image(model, image)
            model.embeddings.put(key, emb)
    net = model.network
    h, w = emb.original_size
    size = net.image_size
    coords, point_labels = validate_points(points, labels, (h, w))
    box_xyxy = validate_box(box, (h, w))
    mask_in = _validate_mask_logits(mask_logits, net.sam_prompt_encoder.mask_input_size)
    if coords is None and box_xyxy is None and mask_in is None:
        raise ValueError("empty prompt: give points, a box or mask_logits")
    scale = np.array([size / w, size / h], dtype=np.float32)
    all_coords = np.zeros((0, 2), np.float32)
    all_labels = np.zeros((0,), np.int32)
    if box_xyxy is not None:
        all_coords = box_xyxy.reshape(2, 2) * scale
        all_labels = np.array([2, 3], np.int32)
    if coords is not None:
        all_coords = np.concatenate([all_coords, coords * scale])
        all_labels = np.concatenate([all_labels, point_labels])
    device = model.device
    feats = emb.features
    with model.precision():
        prompt = net.sam_prompt_encoder
        if len(all_labels):
            sparse = prompt.embed_points(
                torch.as_tensor(all_coords, device=device)[None], torch.as_tensor(all_labels, device=device)[None]
            )
        else:  # a mask prompt alone: no sparse tokens at all
            sparse = torch.zeros(1, 0, net.hidden_dim, device=device)
        mask_t = None if mask_in is None else torch.as_tensor(mask_in, device=device)[None]
        dense = prompt.embed_mask(mask_t, 1)
        out = net.sam_mask_decoder(feats.embed, prompt.dense_pe(), sparse, dense, multimask, feats.high_res or None)
    low = out.masks.float()[0]  # (K, S/4, S/4)
    logits = resize_bilinear(low[None], (h, w))[0]
    return ImagePrediction(
        masks=(logits > 0).cpu().numpy(),
        logits=logits.cpu().numpy(),
        scores=out.ious.float()[0].cpu().numpy(),
        low_res_logits=low.clamp(-32.0, 32.0).cpu().numpy(),
    )


def _validate_mask_logits(mask_logits, expected: tuple[int, int]) -> np.ndarray | None:
    if mask_logits is None:
        return None
    m = np.asarray(mask_logits, dtype=np.float32)
    if m.ndim == 2:
        m = m[None]
    if m.shape != (1, *expected):
        raise ValueError(
            f"mask_logits must have shape {expected} or (1, {expected[0]}, {expected[1]}) "
            f"(the low_res_logits of an earlier prediction); got {tuple(np.shape(mask_logits))}"
        )
    if not np.isfinite(m).all():
        raise ValueError("mask_logits contains NaN or infinite values")
    return m
