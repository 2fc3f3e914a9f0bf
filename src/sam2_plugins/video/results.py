"""Compact per-frame results of a video session, and read-back helpers."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from ..model.common import resize_bilinear


class FrameResult(NamedTuple):
    """Masks of every object on one frame, at the source's resolution."""

    frame_index: int
    object_ids: list[int]
    logits: np.ndarray  # (num_objects, H, W) float32 mask logits

    @property
    def masks(self) -> np.ndarray:
        """(num_objects, H, W) bool."""
        return self.logits > 0

    def labels(self, dtype=np.uint16) -> np.ndarray:
        """(H, W) label image of this frame (see :func:`labels_from_logits`)."""
        return labels_from_logits(self.object_ids, self.logits, dtype)


def labels_from_logits(object_ids, logits: np.ndarray, dtype=np.uint16) -> np.ndarray:
    """(H, W) label image from (N, H, W) per-object logits: each pixel gets the id of the most
    confident object with a positive logit (ties: the first), else 0."""
    if len(object_ids) == 0:
        return np.zeros(logits.shape[1:], dtype)
    where = logits.argmax(axis=0)
    best = np.take_along_axis(logits, where[None], axis=0)[0]
    return np.where(best > 0, np.asarray(object_ids, dtype)[where], 0).astype(dtype, copy=False)


FLOOR = -32.0  # logit given to low-res pixels outside an object's stored crop
MARGIN = 2  # low-res pixels kept around the positive region, so upsampled edges stay exact


class ResultStore:
    """Frame -> object id -> compact result: the object's low-res logits (fp16), cropped to a small
    margin around where it is present, and its object score. A cell costs a few hundred bytes per
    frame; logits far outside an object read back as ``FLOOR``.
    """

    def __init__(self, height: int | None = None, width: int | None = None) -> None:
        self.height, self.width = height, width
        self._frames: dict[int, dict[int, tuple[int, int, np.ndarray | None, float]]] = {}
        self._low_shape: tuple[int, int] = (0, 0)

    def set_frame_size(self, height: int, width: int) -> None:
        """The frames' size, once known (a live stream learns it from its first frame)."""
        if self.height is not None and (self.height, self.width) != (height, width):
            raise ValueError(f"results are for {self.width}x{self.height} frames, not {width}x{height}")
        self.height, self.width = height, width

    def put(self, frame: int, obj_id: int, low_res: "torch.Tensor | np.ndarray", score: float) -> None:
        if isinstance(low_res, torch.Tensor):
            low_res = low_res.float().cpu().numpy()
        low = np.asarray(low_res, np.float32).reshape(low_res.shape[-2:])
        self._low_shape = low.shape
        ys, xs = np.nonzero(low > 0)
        if len(ys) == 0:
            entry = (0, 0, None, float(score))
        else:
            y0, x0 = max(ys.min() - MARGIN, 0), max(xs.min() - MARGIN, 0)
            y1, x1 = ys.max() + MARGIN + 1, xs.max() + MARGIN + 1
            entry = (int(y0), int(x0), low[y0:y1, x0:x1].astype(np.float16), float(score))
        self._frames.setdefault(frame, {})[obj_id] = entry

    def low_res(self, frame: int, obj_id: int) -> np.ndarray | None:
        """(S/4, S/4) float32 low-res logits of an object on a frame (FLOOR outside its crop)."""
        item = self._frames.get(frame, {}).get(obj_id)
        if item is None:
            return None
        y0, x0, crop, _ = item
        low = np.full(self._low_shape, FLOOR, np.float32)
        if crop is not None:
            low[y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]] = crop
        return low

    @property
    def nbytes(self) -> int:
        return sum(0 if e[2] is None else e[2].nbytes for entry in self._frames.values() for e in entry.values())

    def drop_object(self, obj_id: int) -> None:
        for entry in self._frames.values():
            entry.pop(obj_id, None)

    def drop_frame(self, frame: int, obj_id: int) -> None:
        self._frames.get(frame, {}).pop(obj_id, None)

    def clear(self) -> None:
        self._frames.clear()

    def frames(self) -> list[int]:
        return sorted(f for f, entry in self._frames.items() if entry)

    def object_ids_on(self, frame: int) -> list[int]:
        return list(self._frames.get(frame, {}))

    def logits(self, frame: int, obj_id: int) -> np.ndarray | None:
        """(H, W) float32 logits of one object on one frame, or None if it has none."""
        low = self.low_res(frame, obj_id)
        if low is None:
            return None
        return resize_bilinear(torch.from_numpy(low)[None, None], (self.height, self.width))[0, 0].numpy()

    def score(self, frame: int, obj_id: int) -> float | None:
        item = self._frames.get(frame, {}).get(obj_id)
        return None if item is None else item[3]

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Every result as tensors: ``results/<id>/<frame>`` (fp16 low-res logits), ``scores/<id>/<frame>``."""
        tensors = {}
        for f in self.frames():
            for oid in self.object_ids_on(f):
                tensors[f"results/{oid}/{f}"] = torch.from_numpy(self.low_res(f, oid)).half()
                tensors[f"scores/{oid}/{f}"] = torch.tensor([self.score(f, oid)])
        return tensors

    def load_state_dict(self, tensors: "dict[str, torch.Tensor]") -> None:
        """Add the results of :meth:`state_dict` (other keys are ignored)."""
        for key, value in tensors.items():
            if key.startswith("results/"):
                _, oid, f = key.split("/")
                self.put(int(f), int(oid), value, float(tensors[f"scores/{oid}/{f}"][0]))

    def label_frame(self, frame: int, id_dtype=np.uint16) -> np.ndarray:
        """(H, W) label image: each pixel gets the id of the most confident object with a positive logit."""
        entry = self._frames.get(frame, {})
        labels = np.zeros((self.height, self.width), dtype=id_dtype)
        if not entry:
            return labels
        ids = sorted(i for i, e in entry.items() if e[2] is not None)  # ties go to the lowest id
        if not ids:
            return labels
        low = torch.from_numpy(np.stack([self.low_res(frame, i) for i in ids]))[:, None]
        logits = resize_bilinear(low, (self.height, self.width))[:, 0].numpy()  # (N, H, W)
        return labels_from_logits(ids, logits, id_dtype)
