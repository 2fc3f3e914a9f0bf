"""Moments in a labelled video that training clips are placed around: an object hiding and coming
back, leaving the view for good, or dividing (its label continued by new ones).

``labels`` are (T, H, W) integer instance ids (0 = background), an array or a lazy array-like
indexable by a list of frame indices.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def continued_by_new_labels(lab: np.ndarray, ids: Sequence[int], cover: float = 0.5) -> np.ndarray:
    """(T, B) bool, True for each object from the first frame where its label is gone while labels
    new on that frame cover at least ``cover`` of its footprint on the frame before (a division,
    or a track relabelled) to the end. Objects that leave or hide stay False."""
    out = np.zeros((len(lab), len(ids)), bool)
    seen = [set(np.unique(frame).tolist()) for frame in lab]  # ids on each frame
    new: dict[int, np.ndarray] = {}  # frame -> its pixels of labels absent the frame before
    for j, i in enumerate(ids):
        for t in range(1, len(lab)):
            if i in seen[t] or i not in seen[t - 1]:
                continue
            if t not in new:
                new[t] = np.isin(lab[t], list(seen[t] - seen[t - 1] - {0}))
            last = lab[t - 1] == i
            if (new[t] & last).sum() >= cover * last.sum():
                out[t:, j] = True
                break
    return out


def _visible_areas(labels) -> tuple[np.ndarray, np.ndarray]:
    """All frames (T, H, W) and each id's pixel count per frame (T, N): column i is id i + 1."""
    lab = np.asarray(labels[list(range(len(labels)))])
    count = int(lab.max()) + 1
    return lab, np.stack([np.bincount(frame.ravel(), minlength=count) for frame in lab])[:, 1:]


def hidings(labels) -> list[tuple[int, int | None, int]]:
    """(first hidden frame, first frame shown again or None, id) of every time an object's visible
    area falls below half of its largest in the video (a whole pass over the video's labels)."""
    _, area = _visible_areas(labels)
    peak = area.max(0)
    hidden = (area < 0.5 * peak) & (peak > 0)  # (T, N)
    out = []
    for t, i in zip(*np.nonzero(hidden[1:] & ~hidden[:-1])):
        shown = np.nonzero(~hidden[t + 1 :, i])[0]
        out.append((int(t) + 1, int(t) + 1 + int(shown[0]) if len(shown) else None, int(i) + 1))
    return out


def clip_around_hiding(labels, length: int, max_stride: int, rng: np.random.Generator) -> tuple[int, int] | None:
    """(start, stride) of a clip that shows an object hidden and shown again, from 1-2 frames
    before it hides (None: the video has no such moment)."""
    events = [(hide, back) for hide, back, _ in hidings(labels) if back is not None]
    if not events:
        return None
    hide, back = events[int(rng.integers(len(events)))]
    before = int(rng.integers(1, 3))
    total = len(labels)
    stride = 1  # the smallest that reaches the frame the object is shown again
    while stride < max_stride and (length - 1 - before) * stride < back - hide:
        stride += 1
    stride = max(1, min(stride, (total - 1) // (length - 1)))
    span = (length - 1) * stride + 1
    return min(max(0, hide - before * stride), total - span), stride


def departures(labels) -> list[tuple[int, int]]:
    """(first frame it is gone, id) of every object that leaves the view for good: shown on a run of
    frames that ends before the video does, last seen touching the frame's edge, and not divided
    (no new labels take its place; see :func:`continued_by_new_labels`)."""
    lab, area = _visible_areas(labels)
    shown = area > 0  # (T, N)
    gone = {}  # id -> first frame it is gone, for ids that leave at an edge
    for i in np.nonzero(shown.any(0))[0]:
        seen = np.nonzero(shown[:, i])[0]
        first, last = int(seen[0]), int(seen[-1])
        if last == len(lab) - 1 or not shown[first : last + 1, i].all():
            continue
        frame = lab[last]
        if (np.concatenate([frame[0], frame[-1], frame[:, 0], frame[:, -1]]) == i + 1).any():
            gone[int(i) + 1] = last + 1
    divided = continued_by_new_labels(lab, list(gone)).any(0)  # (len(gone),)
    return [(t, i) for (i, t), d in zip(gone.items(), divided) if not d]


def clip_before_departure(labels, length: int, rng: np.random.Generator) -> tuple[int, int] | None:
    """(start, id) of a clip whose last 2-3 frames come after an object leaves the view (None: the
    video has no departure early enough for the object to show on the clip's first frame)."""
    total = len(labels)
    choices = []
    for gone, i in departures(labels):
        after = min(int(rng.integers(2, 4)), total - gone)  # frames shown after it is gone
        start = gone + after - length
        if start >= 0 and (np.asarray(labels[start]) == i).any():
            choices.append((start, i))
    return choices[int(rng.integers(len(choices)))] if choices else None
