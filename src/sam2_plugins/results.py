"""Compact per-frame results of a video session, and read-back helpers."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from .model.common import resize_bilinear


class FrameResult(NamedTuple):
    """Masks of every object on one frame, at the source's resolution."""

    frame_index: int
    object_ids: list[int]
    logits: np.ndarray  # (num_objects, H, W) float32 mask logits

    @property
    def masks(self) -> np.ndarray:
        """(num_objects, H, W) bool."""
        return self.logits > 0


class ResultStore:
    """Frame -> object id -> low-res logits (fp16) and object score: a few hundred KB per frame and object."""

    def __init__(self, height: int, width: int) -> None:
        self.height, self.width = height, width
        self._frames: dict[int, dict[int, tuple[np.ndarray, float]]] = {}

    def put(self, frame: int, obj_id: int, low_res: torch.Tensor, score: float) -> None:
        self._frames.setdefault(frame, {})[obj_id] = (
            low_res.reshape(low_res.shape[-2:]).to(torch.float16).cpu().numpy(), float(score),
        )

    def drop_object(self, obj_id: int) -> None:
        for entry in self._frames.values():
            entry.pop(obj_id, None)

    def drop_frame(self, frame: int, obj_id: int) -> None:
        self._frames.get(frame, {}).pop(obj_id, None)

    def clear(self) -> None:
        self._frames.clear()

    def frames(self) -> list[int]:
        return sorted(f for f, entry in self._frames.items() if entry)

    def objects_on(self, frame: int) -> dict[int, tuple[np.ndarray, float]]:
        return self._frames.get(frame, {})

    def logits(self, frame: int, obj_id: int) -> np.ndarray | None:
        """(H, W) float32 logits of one object on one frame, or None if it has none."""
        item = self._frames.get(frame, {}).get(obj_id)
        if item is None:
            return None
        low = torch.from_numpy(item[0].astype(np.float32))[None, None]
        return resize_bilinear(low, (self.height, self.width))[0, 0].numpy()

    def score(self, frame: int, obj_id: int) -> float | None:
        item = self._frames.get(frame, {}).get(obj_id)
        return None if item is None else item[1]

    def label_frame(self, frame: int, id_dtype=np.uint16) -> np.ndarray:
        """(H, W) label image: each pixel gets the id of the most confident object with a positive logit."""
        entry = self._frames.get(frame, {})
        labels = np.zeros((self.height, self.width), dtype=id_dtype)
        if not entry:
            return labels
        ids = sorted(entry)  # ties go to the lowest id, whatever order results arrived in
        low = torch.from_numpy(np.stack([entry[i][0] for i in ids]).astype(np.float32))[:, None]
        logits = resize_bilinear(low, (self.height, self.width))[:, 0].numpy()  # (N, H, W)
        where = logits.argmax(axis=0)
        best = np.take_along_axis(logits, where[None], axis=0)[0]
        ids_arr = np.asarray(ids, dtype=id_dtype)
        labels[...] = np.where(best > 0, ids_arr[where], 0)
        return labels
