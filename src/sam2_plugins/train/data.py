"""Training data: the video dataset protocol, built-in synthetic datasets, and clip sampling.

A :class:`VideoDataset` is any sequence of videos: ``len(ds)`` and ``ds[i] -> (frames, labels)``
with ``frames`` (T, H, W, 3) float in [0, 1] or uint8 and ``labels`` (T, H, W) integer instance
ids (0 = background; one id per object, constant over time). Both may be lazy array-likes
indexable by a list of frame indices (see :mod:`sam2_plugins.train.folder`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F

from ..preprocess import to_model_input
from .events import clip_around_hiding, clip_before_departure, continued_by_new_labels

if TYPE_CHECKING:
    from ..synthetic import SceneVideo


@runtime_checkable
class VideoDataset(Protocol):
    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]: ...


def to_rgb01(frames: np.ndarray) -> np.ndarray:
    """(T, H, W[, C]) uint8 or float [0, 1] -> float32 (T, H, W, 3)."""
    arr = np.asarray(frames)
    arr = arr.astype(np.float32) / 255.0 if arr.dtype == np.uint8 else arr.astype(np.float32, copy=False)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return arr[..., :3]


class SyntheticCells:
    """Seeded synthetic microscopy time-lapses with varied style, bit depth, density and size.

    Item ``i`` is ``make_timelapse(seed_base + i, ...)`` with settings drawn from that seed;
    16-bit movies are stretched as the video session does (percentile fit over the video).
    ``handoff_share`` of the movies have a cell enter beside each one that leaves, as it goes.
    """

    def __init__(self, num_videos: int = 100_000, seed_base: int = 1_000_000, num_frames: int = 12,
                 size: tuple[int, int] = (192, 320), handoff_share: float = 0.0) -> None:
        self.num_videos, self.seed_base, self.num_frames, self.size = num_videos, seed_base, num_frames, size
        self.handoff_share = handoff_share

    def __len__(self) -> int:
        return self.num_videos

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        from ..intensity import fit_normalizer
        from ..synthetic import make_timelapse

        seed = self.seed_base + int(index)
        r = np.random.default_rng(seed)
        h = int(r.integers(self.size[0], self.size[1] + 1))
        w = int(np.clip(h * r.uniform(0.8, 1.25), self.size[0], self.size[1]))
        dtype = np.uint16 if r.random() < 0.3 else np.uint8
        tl = make_timelapse(
            seed, num_frames=self.num_frames, height=h, width=w, num_cells=int(r.integers(3, 15)),
            style="phase" if r.random() < 0.4 else "fluorescence", dtype=dtype,
            noise=float(r.uniform(0.5, 2.0)), blur=float(r.uniform(0.5, 1.5)),
            cell_radius=float(r.uniform(8, 24)) if r.random() < 0.5 else None,
            # drawn last, and only when asked for: movies of datasets without handoffs stay as they were
            handoffs=self.handoff_share > 0 and r.random() < self.handoff_share,
        )
        norm = fit_normalizer(list(tl.frames[:: max(1, len(tl.frames) // 4)]), dtype)
        frames = np.stack([norm.apply(f) for f in tl.frames])
        return frames, tl.labels


class SyntheticScenes:
    """Seeded synthetic RGB scene videos (textured shapes, occlusions, camera pan).

    ``num_frames`` (an int, or an inclusive (low, high) range drawn per video) sets how long
    each video's motion takes: objects cross each other once per video, so longer videos move
    more slowly per frame. Items are lazy: only the frames a clip asks for are rendered.
    """

    def __init__(self, num_videos: int = 100_000, seed_base: int = 2_000_000,
                 num_frames: int | tuple[int, int] = 12, size: tuple[int, int] = (160, 288)) -> None:
        self.num_videos, self.seed_base, self.num_frames, self.size = num_videos, seed_base, num_frames, size

    def __len__(self) -> int:
        return self.num_videos

    def __getitem__(self, index: int) -> tuple[_LazyFrames, _LazyFrames]:
        seed = self.seed_base + int(index)
        r = np.random.default_rng(seed)
        h = int(r.integers(self.size[0], self.size[1] + 1))
        w = int(np.clip(h * r.uniform(1.0, 1.5), self.size[0], self.size[1] + 64))
        num_objects = int(r.integers(1, 6))
        noise = float(r.uniform(1.0, 6.0))
        span = self.num_frames if isinstance(self.num_frames, tuple) else (self.num_frames, self.num_frames)
        scene = _LazyScene(seed, dict(num_frames=int(r.integers(span[0], span[1] + 1)), height=h, width=w,
                                      num_objects=num_objects, noise=noise))
        return _LazyFrames(scene, "frames"), _LazyFrames(scene, "labels")


class _LazyScene:
    """One ``make_scene_video`` whose frames are rendered when asked for (the last request is kept)."""

    def __init__(self, seed: int, kwargs: dict) -> None:
        self.seed, self.kwargs = seed, kwargs
        self.num_frames = int(kwargs["num_frames"])
        self._last: tuple[tuple[int, ...], SceneVideo] | None = None

    def render(self, idx) -> SceneVideo:
        from ..synthetic import make_scene_video

        chosen = tuple(int(t) for t in np.arange(self.num_frames)[idx].reshape(-1))
        if self._last is not None and self._last[0] != chosen and set(chosen) <= set(self._last[0]):
            # frames are rendered one by one (noise seeded per frame): a subset of the last render
            rows = [self._last[0].index(t) for t in chosen]
            last = self._last[1]
            return replace(last, frames=last.frames[rows], labels=last.labels[rows], amodal=last.amodal[rows])
        if self._last is None or self._last[0] != chosen:
            self._last = (chosen, make_scene_video(self.seed, frames=chosen, **self.kwargs))
        return self._last[1]


class _LazyFrames:
    """``frames`` or ``labels`` of a :class:`_LazyScene`, indexable by an int, slice or index list."""

    def __init__(self, scene: _LazyScene, field: str) -> None:
        self.scene, self.field = scene, field

    def __len__(self) -> int:
        return self.scene.num_frames

    def __getitem__(self, idx) -> np.ndarray:
        out = getattr(self.scene.render(idx), self.field)
        return out[0] if np.ndim(idx) == 0 and not isinstance(idx, slice) else out


class MixedDataset:
    """Draws from several datasets with given probabilities (item i -> dataset by a seeded draw)."""

    def __init__(self, parts: Sequence[tuple[VideoDataset, float]], seed: int = 0) -> None:
        if not parts:
            raise ValueError("MixedDataset needs at least one dataset")
        self.parts = [p for p, _ in parts]
        weights = np.asarray([w for _, w in parts], dtype=np.float64)
        self.probs = weights / weights.sum()
        self.seed = seed

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        r = np.random.default_rng((self.seed, int(index)))
        k = int(r.choice(len(self.parts), p=self.probs))
        part = self.parts[k]
        return part[int(r.integers(len(part)))]


@dataclass
class ClipSettings:
    clip_len: int = 8
    max_objects: int = 3
    min_object_pixels: int = 12  # an object must show this many pixels on the first frame
    augment: bool = True
    max_zoom: float = 1.4  # random crop of 1/zoom of each side, then resized to the model input
    pan_prob: float = 0.0  # chance that a zoomed clip's crop window slides across the video (camera pan)
    max_stride: int = 1  # video clips take every k-th frame, k drawn from 1..max_stride (faster motion)
    # chance that a video clip shows an object becoming mostly hidden (behind another, out of view) and
    # coming back, where the video has one: the clip starts 1-2 frames before its visible area drops
    # below half its largest, taking every k-th frame (k <= occlusion_max_stride) to reach its return
    occlusion_prob: float = 0.0
    occlusion_max_stride: int = 3
    # chance that a video clip shows a tracked object leave the view for good (not by dividing): the
    # clip's last 2-3 frames come after its last visible one. Videos are drawn until one has such a
    # departure (half the tries; then any clip)
    exit_prob: float = 0.0
    # leave an object's frames out of the losses once its label ends where new labels take over its
    # place (a division): whether its track should then stop or cover the daughters is not defined
    skip_divided: bool = False
    image_prob: float = 0.0  # chance that a step trains on one frame (SAM-style, more objects)
    image_max_objects: int = 8
    videos_per_step: int = 1  # clips of different videos run as one batch (shared prompt plan)
    images_per_step: int = 1  # frames of different videos in one single-frame step


@dataclass
class Clip:
    """One or more clips of the same length, batched by object.

    ``pixels`` holds K clips one after another (clip k, frame t at row k * T + t);
    ``object_clip[j]`` says which clip object j belongs to (None: a single clip).
    """

    pixels: torch.Tensor  # (K * T, 3, S, S) normalised model input
    gt: torch.Tensor  # (T, B, 1, S, S) bool
    object_ids: list[int]
    object_clip: list[int] | None = None
    labels: torch.Tensor | None = None  # (K * T, S, S) int64 every instance of each frame (0 = background)
    unscored: torch.Tensor | None = None  # (T, B) bool: frames left out of an object's losses


def batch_clips(clips: Sequence[Clip]) -> Clip:
    """Several clips as one batch of objects (cut to the shortest clip's length)."""
    if len(clips) == 1:
        return clips[0]
    length = min(c.gt.shape[0] for c in clips)
    pixels = torch.cat([c.pixels[:length] for c in clips])  # (K * T, 3, S, S)
    gt = torch.cat([c.gt[:length] for c in clips], 1)  # (T, sum B, 1, S, S)
    object_clip = [k for k, c in enumerate(clips) for _ in c.object_ids]
    labels = None
    if all(c.labels is not None for c in clips):
        labels = torch.cat([c.labels[:length] for c in clips])  # (K * T, S, S), rows as pixels
    unscored = None
    if any(c.unscored is not None for c in clips):
        unscored = torch.cat([c.unscored[:length] if c.unscored is not None
                              else torch.zeros(length, len(c.object_ids), dtype=torch.bool) for c in clips], 1)
    return Clip(pixels, gt, [i for c in clips for i in c.object_ids], object_clip, labels, unscored)


def _photometric(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Clip-wide brightness/contrast/gamma jitter, a little per-frame brightness flicker, maybe grey."""
    gamma = float(np.exp(rng.uniform(-0.3, 0.3)))
    x = np.clip(x, 0, 1) ** gamma
    x = (x - 0.5) * rng.uniform(0.75, 1.3) + 0.5 + rng.uniform(-0.1, 0.1)
    x = x + rng.uniform(-0.03, 0.03, size=(x.shape[0], 1, 1, 1))
    if rng.random() < 0.05:
        x = np.repeat(x.mean(-1, keepdims=True), 3, -1)
    return np.clip(x, 0, 1).astype(np.float32)


def sample_clip(frames, labels, size: int, s: ClipSettings, rng: np.random.Generator,
                single_frame: bool = False, departure: bool = False) -> Clip | None:
    """A random clip of one video as model input and per-object targets (None: no usable object,
    or ``departure`` asked for a clip that shows an object leave the view and the video has none)."""
    total = len(labels)
    length = 1 if single_frame else min(s.clip_len, total)
    max_objects = s.image_max_objects if single_frame else s.max_objects
    stride = 1
    if length > 1 and s.max_stride > 1:  # no draw otherwise: recipes without strides reproduce
        stride = int(rng.integers(1, max(1, min(s.max_stride, (total - 1) // (length - 1))) + 1))
    start, leaving = None, None
    if departure and length > 1:
        found = clip_before_departure(labels, length, rng)
        if found is None:
            return None
        start, leaving = found
        stride = 1
    elif length > 1 and s.occlusion_prob > 0 and rng.random() < s.occlusion_prob:
        start, stride = clip_around_hiding(labels, length, s.occlusion_max_stride, rng) or (None, stride)
    span = (length - 1) * stride + 1
    if start is None:
        start = int(rng.integers(0, total - span + 1))
    idx = list(range(start, start + span, stride))
    lab = np.asarray(labels[idx])
    rgb = to_rgb01(np.asarray(frames[idx]))
    h, w = lab.shape[1:]
    if s.augment:
        zoom = float(rng.uniform(1.0, s.max_zoom)) if rng.random() < 0.5 else 1.0
        ch, cw = max(16, round(h / zoom)), max(16, round(w / zoom))
        y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        if length > 1 and zoom > 1.0 and s.pan_prob > 0 and rng.random() < s.pan_prob:
            # the window moves in a straight line from (y0, x0) to a second random origin
            y1, x1 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            ys = np.rint(np.linspace(y0, y1, length)).astype(int)
            xs = np.rint(np.linspace(x0, x1, length)).astype(int)
            windows = list(enumerate(zip(ys, xs)))
            lab, rgb = (np.stack([a[t, y : y + ch, x : x + cw] for t, (y, x) in windows]) for a in (lab, rgb))
        else:
            lab, rgb = lab[:, y0 : y0 + ch, x0 : x0 + cw], rgb[:, y0 : y0 + ch, x0 : x0 + cw]
        if rng.random() < 0.5:
            lab, rgb = lab[:, :, ::-1], rgb[:, :, ::-1]
        if rng.random() < 0.5:
            lab, rgb = lab[:, ::-1], rgb[:, ::-1]
        k = int(rng.integers(0, 4))
        if k:
            lab, rgb = np.rot90(lab, k, axes=(1, 2)), np.rot90(rgb, k, axes=(1, 2))
        rgb = _photometric(np.ascontiguousarray(rgb), rng)
    ids, counts = np.unique(lab[0], return_counts=True)
    ids = [int(i) for i, c in zip(ids, counts) if i != 0 and c >= s.min_object_pixels]
    if not ids:
        return None
    if leaving in ids:  # the object that leaves is tracked, with others drawn as usual
        others = [i for i in ids if i != leaving]
        drawn = rng.choice(others, min(max_objects - 1, len(others)), replace=False) if others else []
        chosen = sorted([leaving, *(int(i) for i in drawn)])
    else:
        chosen = sorted(int(i) for i in rng.choice(ids, min(max_objects, len(ids)), replace=False))
    lab_t = torch.from_numpy(np.ascontiguousarray(lab).astype(np.int64))
    masks = torch.stack([(lab_t == i) for i in chosen], 1).float()  # (T, B, H, W)
    if masks.shape[-2:] != (size, size):
        masks = F.interpolate(masks, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    gt = (masks >= 0.5)[:, :, None]
    every = F.interpolate(lab_t[:, None].float(), size=(size, size), mode="nearest")[:, 0].long()  # (T, S, S)
    pixels = to_model_input(np.ascontiguousarray(rgb), size)
    unscored = torch.from_numpy(continued_by_new_labels(lab, chosen)) if s.skip_divided and length > 1 else None
    return Clip(pixels, gt, chosen, labels=every, unscored=unscored)


def draw_clip(dataset: VideoDataset, size: int, s: ClipSettings, rng: np.random.Generator,
              max_tries: int = 50) -> Clip:
    """A training batch: ``videos_per_step`` clips (or ``images_per_step`` single frames with
    chance ``image_prob``), each from a video with at least one visible object."""
    single = s.image_prob > 0 and rng.random() < s.image_prob
    count = s.images_per_step if single else s.videos_per_step
    return batch_clips([_draw_one(dataset, size, s, rng, single, max_tries) for _ in range(max(1, count))])


def _draw_one(dataset: VideoDataset, size: int, s: ClipSettings, rng: np.random.Generator, single: bool,
              max_tries: int) -> Clip:
    departure = not single and s.exit_prob > 0 and rng.random() < s.exit_prob  # no draw otherwise
    for attempt in range(max_tries):
        frames, labels = dataset[int(rng.integers(len(dataset)))]
        clip = sample_clip(frames, labels, size, s, rng, single, departure=departure and attempt < max_tries // 2)
        if clip is not None:
            return clip
    raise RuntimeError(f"no clip with a visible object after {max_tries} videos: are the label files empty?")
