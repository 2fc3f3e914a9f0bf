"""Prompts as ComfyUI graphs carry them, turned into per-object prompts for the core.

Accepted forms (the ones SAM 3's core nodes, KJNodes' Points Editor and Florence-2-style detectors
emit, so their graphs plug in):

* points: a JSON string ``[{"x": 10, "y": 20}, ...]`` (pixels), a JSON or Python list of ``[x, y]``
  pairs, or an empty string / None for none;
* boxes: ``BOUNDING_BOX`` dicts ``{"x", "y", "width", "height"}`` (one dict, a list of dicts for every
  frame, or a list per frame of lists of dicts), or ``BBOX`` lists ``[x0, y0, x1, y1]`` (one, a list of
  them, or a list per frame);
* masks: a ComfyUI MASK ``[B, H, W]``, one object per mask of the batch.

Every problem raises :class:`PromptError` (a ``ValueError``) naming the input and what is wrong, before
any model work starts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["PromptError", "ObjectPrompt", "parse_points", "parse_boxes", "parse_object_ids", "build_prompts",
           "check_prompts"]


class PromptError(ValueError):
    """A prompt a node cannot use; the message says which input and why."""


@dataclass(frozen=True)
class ObjectPrompt:
    """What one object gets on one frame: clicks (x, y pixels, label 1 object / 0 background), a box
    (x0, y0, x1, y1 pixels) and/or a mask (H, W) bool."""

    obj_id: int
    frame: int = 0
    points: tuple[tuple[float, float], ...] = ()
    labels: tuple[int, ...] = ()
    box: tuple[float, float, float, float] | None = None
    mask: np.ndarray | None = field(default=None, compare=False)

    @property
    def empty(self) -> bool:
        return not self.points and self.box is None and self.mask is None


def _load_json(value: Any, name: str) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise PromptError(f"{name} is not valid JSON ({err.msg} at character {err.pos}); expected "
                              f'[{{"x": 10, "y": 20}}, ...] or [[10, 20], ...] in pixels') from None
    return value


def _number(v: Any, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise PromptError(f"{name}: coordinates must be numbers, got {v!r}")
    f = float(v)
    if not np.isfinite(f):
        raise PromptError(f"{name}: coordinates must be finite, got {v!r}")
    return f


def parse_points(value: Any, name: str = "points") -> list[tuple[float, float]]:
    """Clicks as (x, y) pixel pairs from the Points Editor JSON, a list of pairs, or nothing."""
    data = _load_json(value, name)
    if data is None:
        return []
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, (list, tuple)):
        raise PromptError(f"{name} must be a list of points, got {type(data).__name__}")
    if len(data) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in data):
        data = [data]  # a single [x, y]
    out = []
    for n, p in enumerate(data):
        where = f"{name}[{n}]"
        if isinstance(p, dict):
            if "x" not in p or "y" not in p:
                raise PromptError(f'{where} must have "x" and "y" keys, got {sorted(p)}')
            out.append((_number(p["x"], where), _number(p["y"], where)))
        elif isinstance(p, (list, tuple)) and len(p) == 2:
            out.append((_number(p[0], where), _number(p[1], where)))
        else:
            raise PromptError(f'{where} must be {{"x": .., "y": ..}} or [x, y], got {p!r}')
    return out


def _box_xyxy(b: Any, where: str) -> tuple[float, float, float, float]:
    if isinstance(b, dict):
        missing = [k for k in ("x", "y", "width", "height") if k not in b]
        if missing:
            raise PromptError(f"{where} is a BOUNDING_BOX dict without {', '.join(missing)}")
        x, y = _number(b["x"], where), _number(b["y"], where)
        w, h = _number(b["width"], where), _number(b["height"], where)
        if w < 0 or h < 0:
            raise PromptError(f"{where} has a negative width or height ({w:g} x {h:g})")
        return x, y, x + w, y + h
    if isinstance(b, (list, tuple, np.ndarray)) and len(b) == 4:
        x0, y0, x1, y1 = (_number(v, where) for v in b)
        if x1 < x0 or y1 < y0:
            raise PromptError(f"{where} ({x0:g}, {y0:g}, {x1:g}, {y1:g}) has x1 < x0 or y1 < y0; BBOX lists are "
                              "[x0, y0, x1, y1]")
        return x0, y0, x1, y1
    raise PromptError(f"{where} must be a BOUNDING_BOX dict {{x, y, width, height}} or a BBOX [x0, y0, x1, y1], "
                      f"got {b!r}")


def _is_box(b: Any) -> bool:
    return isinstance(b, dict) or (isinstance(b, (list, tuple, np.ndarray)) and len(b) == 4
                                   and all(not isinstance(v, (list, tuple, dict)) for v in b))


def parse_boxes(value: Any, name: str = "bboxes") -> list[tuple[float, float, float, float]] | list[list]:
    """Boxes as (x0, y0, x1, y1) pixels.

    Returns ``[box, ...]`` for boxes shared by every frame, or ``[[box, ...], ...]`` (one list per frame)
    when the input is a list per frame. Box ``k`` (on any frame) is the k-th object of the boxes.
    """
    data = _load_json(value, name)
    if data is None:
        return []
    if isinstance(data, np.ndarray):
        data = data.tolist()
    if _is_box(data):
        return [_box_xyxy(data, name)]
    if not isinstance(data, (list, tuple)):
        raise PromptError(f"{name} must be a box or a list of boxes, got {type(data).__name__}")
    if data and all(isinstance(item, (list, tuple)) and not _is_box(item) for item in data):
        return [[_box_xyxy(b, f"{name}[{f}][{k}]") for k, b in enumerate(frame)] for f, frame in enumerate(data)]
    return [_box_xyxy(b, f"{name}[{k}]") for k, b in enumerate(data)]


def parse_object_ids(text: Any, name: str = "object_ids") -> list[int] | None:
    """``"1, 3"`` -> [1, 3]; an empty string means every object (None)."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if isinstance(text, (int, np.integer)) and not isinstance(text, bool):
        return [int(text)]
    ids = []
    for part in str(text).replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part[1:]:
            lo, _, hi = part.partition("-")
            if not (lo.strip().isdigit() and hi.strip().isdigit()) or int(lo) > int(hi):
                raise PromptError(f"{name}: {part!r} is not a range of ids like 2-5")
            ids.extend(range(int(lo), int(hi) + 1))
        elif part.isdigit():
            ids.append(int(part))
        else:
            raise PromptError(f"{name}: {part!r} is not an object id; write ids like 1, 3 or 2-5")
    return sorted(set(ids))


def _mask_list(mask: Any) -> list[np.ndarray]:
    if mask is None:
        return []
    arr = mask.detach().cpu().numpy() if hasattr(mask, "detach") else np.asarray(mask)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise PromptError(f"mask must be a MASK [B, H, W], got shape {arr.shape}")
    return [m > 0.5 for m in arr]


def build_prompts(*, frame: int = 0, positive: Any = None, negative: Any = None, boxes: Any = None,
                  masks: Any = None, first_id: int = 1) -> list[ObjectPrompt]:
    """Objects from one node's direct prompt inputs, all on ``frame`` (boxes given per frame go on
    their own frames).

    Ids count from ``first_id`` in this order: the clicks' object (joined with the first box's object
    when both are given: clicks refine that box), then one object per further box, then one per mask
    of the MASK batch.
    """
    pos, neg = parse_points(positive, "positive_coords"), parse_points(negative, "negative_coords")
    if neg and not pos and boxes is None:
        raise PromptError("negative_coords alone select nothing: add a positive click or a box")
    box_list = parse_boxes(boxes, "bboxes")
    mask_list = _mask_list(masks)
    clicks = tuple(pos + neg), tuple([1] * len(pos) + [0] * len(neg))
    out: list[ObjectPrompt] = []
    per_frame = bool(box_list) and isinstance(box_list[0], list)
    if per_frame:
        n_objects = max(len(f) for f in box_list)
        for f, frame_boxes in enumerate(box_list):
            for k, b in enumerate(frame_boxes):
                extra = clicks if (k == 0 and f == frame) else ((), ())
                out.append(ObjectPrompt(first_id + k, f, extra[0], extra[1], box=b))
        if clicks[0] and not (0 <= frame < len(box_list) and box_list[frame]):
            out.append(ObjectPrompt(first_id, frame, *clicks))
        next_id = first_id + max(n_objects, 1 if clicks[0] else 0)
    else:
        next_id = first_id
        if box_list:
            for k, b in enumerate(box_list):
                extra = clicks if k == 0 else ((), ())
                out.append(ObjectPrompt(next_id, frame, extra[0], extra[1], box=b))
                next_id += 1
        elif clicks[0]:
            out.append(ObjectPrompt(next_id, frame, *clicks))
            next_id += 1
    for m in mask_list:
        out.append(ObjectPrompt(next_id, frame, mask=m))
        next_id += 1
    return out


def check_prompts(prompts: list[ObjectPrompt], num_frames: int, height: int, width: int) -> None:
    """Every prompt fits a video of ``num_frames`` frames of ``width`` x ``height`` (raises PromptError)."""
    if not prompts:
        raise PromptError("no prompt given: connect positive_coords, bboxes, a mask or SAM2 prompts")
    for p in prompts:
        who = f"object {p.obj_id} on frame {p.frame}"
        if not 1 <= p.obj_id <= 65535:
            raise PromptError(f"{who}: object ids go from 1 to 65535")
        if not 0 <= p.frame < num_frames:
            raise PromptError(f"{who}: frame {p.frame} is outside the {num_frames} frame(s) given "
                              f"(frames count from 0)")
        if p.empty:
            raise PromptError(f"{who}: the prompt is empty (no click, box or mask)")
        for x, y in p.points:
            if not (0 <= x <= width and 0 <= y <= height):
                raise PromptError(f"{who}: point ({x:g}, {y:g}) is outside the {width}x{height} frame")
        if p.box is not None:
            x0, y0, x1, y1 = p.box
            if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
                raise PromptError(f"{who}: box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is outside the {width}x{height} "
                                  "frame")
        if p.mask is not None and p.mask.shape != (height, width):
            raise PromptError(f"{who}: the mask is {p.mask.shape[1]}x{p.mask.shape[0]} but the frames are "
                              f"{width}x{height} (width x height)")
        if p.mask is not None and not p.mask.any():
            raise PromptError(f"{who}: the mask is empty")
