"""``Sam2``: a SAM 2 network ready to use, what :func:`sam2_plugins.load_model` returns.

    model = sam2_plugins.load_model("sam2.1-hiera-tiny")
    pred = model.predict_image(image, points=[[120, 80]], labels=[1])
    session = model.open_video("timelapse.tif")
    stream = model.open_stream()
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .automask import AutoMask, AutoMaskSettings, generate_masks
from .config import Sam2Config
from .image_predictor import EmbeddingCache, ImageEmbedding, ImagePrediction, embed_image, predict_image
from .model.sam2 import Sam2Model
from .video.session import VideoSession
from .video.stream import StreamSession

_COMPUTE_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


@dataclass(eq=False)
class Sam2:
    """The network on its device, the dtype it computes in, where its weights came from, and the
    cache of image embeddings (repeated clicks on one image run only the mask decoder)."""

    network: Sam2Model
    compute_dtype: torch.dtype = torch.float32
    weights: str | None = None  # the checkpoint file (or None for weights made in memory)
    embeddings: EmbeddingCache = field(default_factory=EmbeddingCache)

    def __post_init__(self) -> None:
        if not isinstance(self.network, Sam2Model):
            raise TypeError(f"network must be a Sam2Model, got {type(self.network).__name__}")
        if self.compute_dtype not in _COMPUTE_DTYPES:
            raise ValueError(f"compute_dtype must be one of {_COMPUTE_DTYPES}, got {self.compute_dtype}")

    @property
    def device(self) -> torch.device:
        return self.network.device

    @property
    def config(self) -> Sam2Config:
        return self.network.config

    @property
    def image_size(self) -> int:
        """The side of the square input the network works at."""
        return self.network.image_size

    def precision(self) -> contextlib.AbstractContextManager:
        """Context for inference in :attr:`compute_dtype` (autocast when it is not float32)."""
        if self.compute_dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.compute_dtype)

    # ------------------------------------------------------------------ images
    def embed_image(self, image: np.ndarray, normalizer=None) -> ImageEmbedding:
        """Encode one image once; pass the result to :meth:`predict_image` for any number of prompts."""
        return embed_image(self, image, normalizer)

    def predict_image(self, image: "np.ndarray | ImageEmbedding", *, points=None, labels=None, box=None,
                      mask_logits=None, multimask: bool = False) -> ImagePrediction:
        """Masks for one object in one image ((H, W) or (H, W, C)) from clicks ((x, y) pixels, labels
        1/0), a box (x0, y0, x1, y1) and/or earlier ``low_res_logits``."""
        return predict_image(self, image, points=points, labels=labels, box=box, mask_logits=mask_logits,
                             multimask=multimask)

    def generate_masks(self, image: np.ndarray, settings: AutoMaskSettings | None = None, *, progress=None,
                       cancel=None) -> list[AutoMask]:
        """Every object of one image ("segment everything"): a grid of clicks, filtered and
        de-duplicated (see :mod:`sam2_plugins.automask`; for a video frame use
        ``session.add_automatic_masks`` or this on ``video.cells.frame_image(session.source, frame)``)."""
        return generate_masks(self, image, settings, progress=progress, cancel=cancel)

    # ------------------------------------------------------------------ videos
    def open_video(self, source: Any, **options: Any) -> VideoSession:
        """A :class:`~sam2_plugins.video.VideoSession` over frames from ``source`` (a path, an array,
        a dask/zarr array or a frame source)."""
        return VideoSession(self, source, **options)

    def open_stream(self, **options: Any) -> StreamSession:
        """A :class:`~sam2_plugins.video.StreamSession` fed frame by frame with ``push``."""
        return StreamSession(self, **options)

    def compile_parts(self, mode: str | None = None) -> "Sam2":
        """Compile the image encoder and memory attention with ``torch.compile`` (worth it on GPUs for
        long videos; the first frames pay the compilation). Returns the model itself."""
        self.network.compile_parts(mode)
        return self
