"""One object of a video session: its prompts and outputs, and the rules that keep them consistent."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np
import torch

from ..model.common import resize_bilinear
from .stores import TENSOR_FIELDS, FrameOutput, SpillDict


@dataclass
class PointPrompt:
    coords: torch.Tensor  # (1, N, 2) model-input pixels
    labels: torch.Tensor  # (1, N) int32: 1 object, 0 background, 2/3 box corners

    @classmethod
    def from_pixels(cls, coords: np.ndarray, labels: np.ndarray, frame_hw: tuple[int, int],
                    size: int) -> "PointPrompt":
        """Checked (N, 2) (x, y) frame pixels and (N,) labels -> a prompt for an S x S input."""
        h, w = frame_hw
        scale = torch.tensor([size / w, size / h], dtype=torch.float32)
        return cls(torch.as_tensor(coords)[None] * scale, torch.as_tensor(labels, dtype=torch.int32)[None])

    def extended(self, more: "PointPrompt") -> "PointPrompt":
        """These clicks followed by ``more``."""
        return PointPrompt(torch.cat([self.coords, more.coords], 1), torch.cat([self.labels, more.labels], 1))

    def to(self, device: torch.device) -> "PointPrompt":
        return PointPrompt(self.coords.to(device), self.labels.to(device))


def box_corners(box_xyxy: np.ndarray, coords: np.ndarray | None, labels: np.ndarray | None
                ) -> tuple[np.ndarray, np.ndarray]:
    """A box as SAM 2's two corner points (labels 2, 3), then any clicks."""
    all_coords, all_labels = box_xyxy.reshape(2, 2), np.array([2, 3], np.int32)
    if coords is not None:
        all_coords, all_labels = np.concatenate([all_coords, coords]), np.concatenate([all_labels, labels])
    return all_coords, all_labels


def mask_input(mask: np.ndarray, size: int) -> torch.Tensor:
    """A checked (H, W) bool mask -> (1, 1, S, S) float 0/1 for an S x S input."""
    m = torch.as_tensor(mask, dtype=torch.float32)[None, None]
    if m.shape[-2:] != (size, size):
        m = (resize_bilinear(m, (size, size), antialias=True) >= 0.5).float()
    return m


class ObjectTrack:
    """Everything a session knows about one object.

    Invariants, kept by the methods below:

    * a frame holds at most one prompt, clicks (and box corners) or a mask;
    * a prompted frame's output is *pending* until :meth:`commit` (its memory encoded by then);
      it is then a *conditioning* output, which every later frame may read;
    * a conditioning frame has no tracked output; a tracked output belongs to an unprompted frame;
    * ``tracked[frame]`` says in which direction (reverse or not) a propagation last visited a frame;
    * an object lives on frames ``first_frame``..``last_frame`` (None: unbounded): a daughter starts
      on its division frame, a mother ends the frame before; nothing is stored outside that span.
    """

    def __init__(self, obj_id: int, tracked_store: SpillDict, *, first_frame: int | None = None) -> None:
        self.obj_id = obj_id
        self.first_frame = first_frame
        self.last_frame: int | None = None
        self._points: dict[int, PointPrompt] = {}
        self._masks: dict[int, torch.Tensor] = {}  # frame -> (1, 1, S, S) mask prompt
        self._cond: dict[int, FrameOutput] = {}
        self._pending: dict[int, FrameOutput] = {}
        self._tracked = tracked_store  # frame -> output of a tracked (unprompted) frame
        self._visited: dict[int, bool] = {}

    # ------------------------------------------------------------ read-only views
    @property
    def points(self) -> Mapping[int, PointPrompt]:
        return MappingProxyType(self._points)

    @property
    def masks(self) -> Mapping[int, torch.Tensor]:
        return MappingProxyType(self._masks)

    @property
    def cond(self) -> Mapping[int, FrameOutput]:
        """Conditioning outputs (prompted frames whose memory is encoded), in the order they were made."""
        return MappingProxyType(self._cond)

    @property
    def pending(self) -> Mapping[int, FrameOutput]:
        """Outputs of frames prompted since the last propagation."""
        return MappingProxyType(self._pending)

    @property
    def non_cond(self) -> SpillDict:
        """Outputs of tracked frames (read them; the track changes them)."""
        return self._tracked

    @property
    def tracked(self) -> Mapping[int, bool]:
        """Frame -> tracked in reverse? for every frame a propagation visited."""
        return MappingProxyType(self._visited)

    def latest_output(self, frame: int) -> FrameOutput | None:
        """The newest output of this object on a frame, if any."""
        for store in (self._pending, self._cond, self._tracked):
            if frame in store:
                return store[frame]
        return None

    def prompted_frames(self) -> set[int]:
        return set(self._points) | set(self._masks)

    def alive(self, frame: int) -> bool:
        """Whether the object exists on ``frame`` (it is tracked there)."""
        return ((self.first_frame is None or frame >= self.first_frame)
                and (self.last_frame is None or frame <= self.last_frame))

    # ------------------------------------------------------------ changes
    def set_prompt(self, frame: int, output: FrameOutput, *, points: PointPrompt | None = None,
                   mask: torch.Tensor | None = None) -> None:
        """Record a frame's prompt (clicks or a mask, replacing the other kind) and its pending output."""
        if (points is None) == (mask is None):
            raise ValueError("a prompt is either points or a mask")
        if points is not None:
            self._points[frame] = points
            self._masks.pop(frame, None)
        else:
            self._masks[frame] = mask
            self._points.pop(frame, None)
        self._pending[frame] = output

    def commit(self) -> None:
        """Pending outputs (their memories encoded) become conditioning outputs."""
        for frame, out in sorted(self._pending.items()):
            self._cond[frame] = out
            self._tracked.pop(frame, None)
        self._pending.clear()

    def clear_prompt(self, frame: int) -> bool:
        """Remove the prompt on ``frame``. Its encoded output stays as an ordinary tracked one;
        returns False when nothing of the frame is left (its result should go)."""
        self._points.pop(frame, None)
        self._masks.pop(frame, None)
        self._pending.pop(frame, None)
        out = self._cond.pop(frame, None)
        if out is None:
            return False
        self._tracked[frame] = out
        self._visited.pop(frame, None)
        return True

    def record_tracked(self, frame: int, reverse: bool, output: FrameOutput | None) -> None:
        """A propagation visited ``frame``: store the tracked output (None on a conditioning frame)."""
        if output is not None:
            if frame in self._cond:
                raise ValueError(f"object {self.obj_id}: frame {frame} is prompted; it has no tracked output")
            self._tracked[frame] = output
        self._visited[frame] = reverse

    def forget_before(self, memories_before: int, visits_before: int) -> None:
        """Drop tracked outputs of frames before ``memories_before`` and visits before ``visits_before``."""
        for f in [f for f in self._tracked if f < memories_before]:
            del self._tracked[f]
        for f in [f for f in self._visited if f < visits_before]:
            del self._visited[f]

    def check_end_before(self, frame: int) -> None:
        """Raise ValueError if the object cannot end on ``frame - 1``: prompts from ``frame`` on, or a
        start at or after ``frame``, would contradict it."""
        late = sorted(f for f in self.prompted_frames() | set(self._pending) if f >= frame)
        if late:
            raise ValueError(f"object {self.obj_id} has prompts on frame(s) {late}, at or after frame {frame}")
        if self.first_frame is not None and frame <= self.first_frame:
            raise ValueError(f"object {self.obj_id} starts on frame {self.first_frame}: it cannot end before {frame}")

    def end_before(self, frame: int) -> list[int]:
        """The object ends on ``frame - 1`` (it divided): its tracked outputs and visits from ``frame``
        on go. Returns those frames."""
        self.check_end_before(frame)
        gone = sorted({f for f in self._tracked if f >= frame} | {f for f in self._visited if f >= frame})
        for f in gone:
            self._tracked.pop(f, None)
            self._visited.pop(f, None)
        self.last_frame = frame - 1
        return gone

    def release(self) -> None:
        """Free the tracked outputs (the object is being removed)."""
        self._tracked.clear()

    # ------------------------------------------------------------ records (session files)
    def to_record(self, pixels_per_input: tuple[float, float], keep_tracked: set[int] = frozenset()
                  ) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """(JSON-able description, tensors by key) of this object. ``pixels_per_input`` (x, y)
        turns model-input coordinates into frame pixels for the readable part; ``keep_tracked``
        names tracked frames whose outputs are kept too (the memories a resumed propagation reads)."""
        oid = self.obj_id
        tensors: dict[str, torch.Tensor] = {}
        prompts = []
        sx, sy = pixels_per_input
        for f, p in sorted(self._points.items()):
            key = f"points/{oid}/{f}"
            tensors[key + "/coords"] = p.coords.cpu().contiguous()
            tensors[key + "/labels"] = p.labels.cpu().contiguous()
            pix = (p.coords[0].cpu() * torch.tensor([sx, sy])).tolist()
            prompts.append({"frame": f, "points": pix, "labels": p.labels[0].tolist()})
        for f, m in sorted(self._masks.items()):
            tensors[f"masks/{oid}/{f}"] = m.cpu().to(torch.uint8).contiguous()
            prompts.append({"frame": f, "mask": True})
        stores = {"cond": self._cond, "pending": self._pending,
                  "tracked": {f: self._tracked[f] for f in sorted(keep_tracked) if f in self._tracked}}
        for kind, store in stores.items():
            for f, out in store.items():
                for name in TENSOR_FIELDS:
                    value = getattr(out, name)
                    if value is not None:
                        tensors[f"{kind}/{oid}/{f}/{name}"] = value.cpu().contiguous()
        record = {"id": oid, "prompts": prompts, "tracked": {str(f): r for f, r in self._visited.items()},
                  "first_frame": self.first_frame, "last_frame": self.last_frame}
        return record, tensors

    @classmethod
    def from_record(cls, record: Mapping[str, Any], tensors: Mapping[str, torch.Tensor], tracked_store: SpillDict,
                    device: torch.device) -> "ObjectTrack":
        """The inverse of :meth:`to_record`."""
        oid = int(record["id"])
        track = cls(oid, tracked_store, first_frame=record.get("first_frame"))
        track.last_frame = record.get("last_frame")
        for prompt in record["prompts"]:
            f = int(prompt["frame"])
            if "mask" in prompt:
                track._masks[f] = tensors[f"masks/{oid}/{f}"].float().to(device)
            else:
                track._points[f] = PointPrompt(tensors[f"points/{oid}/{f}/coords"],
                                               tensors[f"points/{oid}/{f}/labels"])
        for kind, store in (("cond", track._cond), ("pending", track._pending), ("tracked", track._tracked)):
            prefix = f"{kind}/{oid}/"
            frames = {int(k[len(prefix):].split("/")[0]) for k in tensors if k.startswith(prefix)}
            for f in sorted(frames):
                values = {n: tensors.get(f"{prefix}{f}/{n}") for n in TENSOR_FIELDS}
                store[f] = FrameOutput(**{n: (None if v is None else v.to(device)) for n, v in values.items()})
        track._visited = {int(f): bool(r) for f, r in record["tracked"].items()}
        return track
