"""Automatic masks ("segment everything"): a grid of single clicks over the image, decoded in batches
from one image embedding, filtered by predicted IoU and stability, duplicates removed by box NMS.

    masks = generate_masks(model, image)                              # Meta's defaults
    masks = generate_masks(model, frame, AutoMaskSettings.for_cells())
    labels = masks_to_labels(masks, frame.shape[:2])                  # (H, W) uint16, ids 1..N
    new = uncovered_masks(masks, tracked_labels, max_overlap=0.2)     # objects not tracked yet

The rules follow Meta's ``SAM2AutomaticMaskGenerator``. The image is embedded once (each crop once);
only the prompt encoder and mask decoder run per batch of points. Masks stay at the decoder's
low resolution (a quarter of the model's input) until they have passed the filters and NMS; the
predicted-IoU survivors are upsampled to the model's input size for the stability score and the
NMS boxes, and only the kept masks are upsampled to the image's resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch

from .automask_ops import (
    box_nms,
    crop_boxes,
    mask_box,
    mask_boxes,
    near_crop_edge,
    point_grid,
    remove_small_regions,
    stability_scores,
)
from .cancel import is_cancelled
from .image_predictor import EmbeddingCache, ImageEmbedding
from .intensity import IntensityNormalizer
from .model.common import resize_bilinear
from .preprocess import image_to_rgb01

if TYPE_CHECKING:
    from .engine import Sam2

__all__ = ["AutoMask", "AutoMaskSettings", "generate_masks", "masks_to_labels", "uncovered_masks"]

_CROP_EDGE_TOLERANCE = 20.0  # pixels: a crop's mask this close to an inner crop edge is taken as cut
_UPSAMPLE_PIXELS = 1 << 24  # logits upsampled to the image's resolution at once (64 MB of float32)


@dataclass(frozen=True)
class AutoMaskSettings:
    """How :func:`generate_masks` samples, filters and merges masks. The defaults are those of Meta's
    ``SAM2AutomaticMaskGenerator`` (chosen for SAM 2 with a Hiera-L backbone).

    points_per_side: an n x n grid of single positive clicks over the image (or a crop).
    points_per_batch: clicks decoded at once (memory vs speed).
    pred_iou_thresh: keep masks whose predicted IoU is above this (0 turns the filter off).
    stability_score_thresh: keep masks whose stability score is at least this (0: off). The score is
        the IoU of the mask cut at ``mask_threshold + stability_score_offset`` and at
        ``mask_threshold - stability_score_offset`` (on logits).
    mask_threshold: the logit above which a pixel is in the mask.
    box_nms_thresh: within one crop, of two masks whose boxes overlap with IoU above this, the one
        with the lower predicted IoU goes.
    crop_n_layers: also run on crops: layer i cuts the image in 2**i x 2**i overlapping crops, each
        embedded separately. Across crops, NMS (``crop_nms_thresh``) prefers masks of smaller crops.
    crop_overlap_ratio: overlap of neighbouring layer-1 crops, as a fraction of the image's short
        side (deeper layers overlap proportionally less).
    crop_n_points_downscale_factor: layer i uses points_per_side / factor**i points per side.
    min_mask_region_area: if > 0, fill holes and remove islands smaller than this (pixels) in each
        mask, then drop masks smaller than this.
    multimask_output: take the 3 masks of each click as candidates (Meta's generator does). None
        follows the model: on for Meta's checkpoints, off for a model that decodes one mask per
        prompt (its config's ``multimask_output_in_sam`` is false, as for ``micro-synthetic``).
    """

    points_per_side: int = 32
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.8
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    mask_threshold: float = 0.0
    box_nms_thresh: float = 0.7
    crop_n_layers: int = 0
    crop_nms_thresh: float = 0.7
    crop_overlap_ratio: float = 512 / 1500
    crop_n_points_downscale_factor: int = 1
    min_mask_region_area: int = 0
    multimask_output: bool | None = None

    def __post_init__(self) -> None:
        _check_int(self, "points_per_side", 1)
        _check_int(self, "points_per_batch", 1)
        _check_int(self, "crop_n_layers", 0, 8)
        _check_int(self, "crop_n_points_downscale_factor", 1)
        _check_int(self, "min_mask_region_area", 0)
        for name in ("pred_iou_thresh", "stability_score_thresh", "box_nms_thresh", "crop_nms_thresh"):
            _check_float(self, name, 0.0, 1.0)
        _check_float(self, "stability_score_offset", 0.0, math.inf)
        _check_float(self, "mask_threshold", -math.inf, math.inf)
        _check_float(self, "crop_overlap_ratio", 0.0, 1.0, high_open=True)
        if self.multimask_output is not None and not isinstance(self.multimask_output, (bool, np.bool_)):
            raise ValueError(
                f"AutoMaskSettings.multimask_output must be True, False or None, got {self.multimask_output!r}")
        deepest = self.points_per_side // self.crop_n_points_downscale_factor**self.crop_n_layers
        if deepest < 1:
            raise ValueError(
                f"AutoMaskSettings.crop_n_points_downscale_factor={self.crop_n_points_downscale_factor} leaves no "
                f"point in crop layer {self.crop_n_layers} (points_per_side={self.points_per_side}); lower it"
            )

    @classmethod
    def for_cells(cls, **overrides) -> "AutoMaskSettings":
        """Settings measured for the bundled ``micro-synthetic`` model on cell images; ``overrides``
        change any field. With Meta's defaults that model finds almost nothing (its predicted IoU of
        a good cell mask is mostly 0.6-0.85, its stability 0.6-0.9).

        A 16 x 16 grid, predicted IoU > 0.6, stability >= 0.7, box NMS at 0.3 (cells do not overlap,
        and a click off a cell's centre often gives half a cell or two touching cells), holes and
        islands under 30 pixels removed; ``multimask_output`` follows the model (one mask per click
        for ``micro-synthetic``). Measured with ``python tests/test_automask.py`` on 64 held-out
        fluorescence frames (``make_timelapse(seed, num_frames=1, height=192, width=192, num_cells=8,
        dtype=np.uint16)``, seeds 200-263, 512 cells of >= 30 pixels): recall 0.86 and precision 0.93
        at mask IoU >= 0.5, about 0.4 s a frame on a 2-core CPU. For objects that overlap (the
        synthetic scenes), pass ``box_nms_thresh=0.7``: recall 0.68, precision 1.0 on 32 scene frames.
        """
        values = dict(
            points_per_side=16,
            pred_iou_thresh=0.6,
            stability_score_thresh=0.7,
            box_nms_thresh=0.3,
            min_mask_region_area=30,
        )
        values.update(overrides)
        return cls(**values)


@dataclass(eq=False)
class AutoMask:
    """One automatic mask, in the coordinates of the whole image."""

    mask: np.ndarray  # (H, W) bool
    area: int  # pixels in mask
    box: tuple[int, int, int, int]  # (x0, y0, x1, y1), ends exclusive: mask[y0:y1, x0:x1] holds every pixel
    predicted_iou: float  # the decoder's own estimate of the mask's quality
    stability_score: float
    point: tuple[float, float]  # (x, y) in pixels: the click that gave the mask
    crop_box: tuple[int, int, int, int]  # (x0, y0, x1, y1) of the crop that was embedded


@dataclass
class _CropMasks:
    """The candidates of one crop, still at the decoder's resolution (a quarter of the model's input)."""

    crop_box: tuple[int, int, int, int]
    logits: torch.Tensor  # (N, s, s)
    ious: np.ndarray  # (N,)
    stability: np.ndarray  # (N,)
    points: np.ndarray  # (N, 2) image pixels
    boxes: np.ndarray  # (N, 4) image pixels (from the masks at the model's input size)

    def take(self, idx) -> "_CropMasks":
        idx = np.asarray(idx, dtype=np.int64)
        rows = torch.as_tensor(idx, device=self.logits.device)
        return _CropMasks(self.crop_box, self.logits[rows], self.ious[idx], self.stability[idx], self.points[idx],
                          self.boxes[idx])

    @staticmethod
    def concat(crop_box, parts: list["_CropMasks"]) -> "_CropMasks":
        if not parts:
            empty = np.zeros(0)
            return _CropMasks(crop_box, torch.zeros(0, 1, 1), empty, empty, np.zeros((0, 2)), np.zeros((0, 4)))
        arrays = (np.concatenate([getattr(p, f) for p in parts]) for f in ("ious", "stability", "points", "boxes"))
        return _CropMasks(crop_box, torch.cat([p.logits for p in parts]), *arrays)


def generate_masks(
    model: "Sam2",
    image: np.ndarray,
    settings: AutoMaskSettings | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
    cancel=None,
) -> list[AutoMask]:
    """Masks of everything in one image ((H, W) or (H, W, C), any numeric dtype, normalised as
    :meth:`Sam2.predict_image` does), best predicted IoU first.

    progress(done, total) is called after each batch of points (all crops together). ``cancel`` (a
    ``threading.Event`` or a callable returning True) stops between batches; the masks found so far
    are then filtered and returned as usual.
    """
    s = settings if settings is not None else AutoMaskSettings()
    if not isinstance(s, AutoMaskSettings):
        raise TypeError(f"settings must be an AutoMaskSettings, got {type(s).__name__}")
    image = np.asarray(image)
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] > 4):
        raise ValueError(
            f"generate_masks takes one image, (H, W) or (H, W, C) with at most 4 channels; got an array of shape "
            f"{image.shape} (for a stack of frames, call it on each frame)"
        )
    rgb = image_to_rgb01(image)  # validates, and fixes one intensity mapping for every crop
    height, width = rgb.shape[:2]
    as_is = IntensityNormalizer(mode="none")
    net = model.network
    multimask = net.config.multimask_output_in_sam if s.multimask_output is None else bool(s.multimask_output)
    crops = crop_boxes(height, width, s.crop_n_layers, s.crop_overlap_ratio)
    grids = [point_grid(s.points_per_side // s.crop_n_points_downscale_factor**i) for i in range(s.crop_n_layers + 1)]
    total = sum(math.ceil(len(grids[layer]) / s.points_per_batch) for _, layer in crops)
    done = 0
    stopped = False
    per_crop: list[_CropMasks] = []
    with torch.inference_mode():
        for crop, layer in crops:
            if stopped or is_cancelled(cancel):
                break
            x0, y0, x1, y1 = crop
            if layer == 0:
                emb = _whole_image_embedding(model, image, rgb, as_is)
            else:
                emb = model.embed_image(rgb[y0:y1, x0:x1], as_is)
            points = grids[layer] * np.array([x1 - x0, y1 - y0], dtype=np.float64)
            parts = []
            for start in range(0, len(points), s.points_per_batch):
                if is_cancelled(cancel):
                    stopped = True
                    break
                parts.append(_decode_batch(model, emb, points[start : start + s.points_per_batch], crop,
                                           (height, width), multimask, s))
                done += 1
                if progress is not None:
                    progress(done, total)
            found = _CropMasks.concat(crop, [p for p in parts if p is not None])
            per_crop.append(found.take(box_nms(found.boxes, found.ious, s.box_nms_thresh)))  # duplicates in the crop
        results = _merge_crops(per_crop, (height, width), s)
    results.sort(key=lambda m: (-m.predicted_iou, -m.stability_score))
    return results


def _whole_image_embedding(model: "Sam2", image: np.ndarray, rgb: np.ndarray, as_is) -> ImageEmbedding:
    """The image's embedding, shared with :meth:`Sam2.predict_image` through the model's cache."""
    key = EmbeddingCache.key(image, model.network.weights_version())
    emb = model.embeddings.get(key)
    if emb is None:
        emb = model.embed_image(rgb, as_is)
        model.embeddings.put(key, emb)
    return emb


def _decode_batch(model: "Sam2", emb: ImageEmbedding, points: np.ndarray, crop, image_hw, multimask: bool,
                  s: AutoMaskSettings) -> _CropMasks | None:
    """Decode one batch of clicks (crop pixels) as single positive clicks, and filter the masks."""
    net = model.network
    size = net.image_size
    x0, y0, x1, y1 = crop
    cw, ch = x1 - x0, y1 - y0
    device = model.device
    prompt = net.sam_prompt_encoder
    feats = emb.features
    coords = torch.as_tensor(points * np.array([size / cw, size / ch]), dtype=torch.float32, device=device)[:, None]
    labels = torch.ones(len(points), 1, dtype=torch.int32, device=device)
    with model.precision():
        sparse = prompt.embed_points(coords, labels)
        dense = prompt.embed_mask(None, len(points))
        out = net.sam_mask_decoder(feats.embed, prompt.dense_pe(), sparse, dense, multimask, feats.high_res or None)
    logits = out.masks.float().flatten(0, 1)  # (B * K, s, s)
    ious = out.ious.float().flatten()
    points = np.repeat(points, out.masks.shape[1], axis=0) + np.array([x0, y0])
    if s.pred_iou_thresh > 0:
        keep = (ious > s.pred_iou_thresh).nonzero()[:, 0]
        logits, ious, points = logits[keep], ious[keep], points[keep.cpu().numpy()]
    # stability and boxes on the logits at the model's input size (Meta's at the image's own size)
    fine = resize_bilinear(logits[:, None], (size, size))[:, 0]
    stability = stability_scores(fine, s.mask_threshold, s.stability_score_offset)
    boxes = mask_boxes(fine > s.mask_threshold).cpu().numpy() * np.array([cw, ch, cw, ch]) / size
    boxes += np.array([x0, y0, x0, y0])
    ok = boxes[:, 2] > boxes[:, 0]
    ok &= ~near_crop_edge(boxes, crop, (0, 0, image_hw[1], image_hw[0]), _CROP_EDGE_TOLERANCE)
    if s.stability_score_thresh > 0:
        ok &= (stability >= s.stability_score_thresh).cpu().numpy()
    keep = np.flatnonzero(ok)
    if len(keep) == 0:
        return None
    rows = torch.as_tensor(keep, device=logits.device)
    return _CropMasks(crop, logits[rows], ious[rows].cpu().numpy(), stability[rows].cpu().numpy(), points[keep],
                      boxes[keep])


def _merge_crops(per_crop: list[_CropMasks], image_hw, s: AutoMaskSettings) -> list[AutoMask]:
    """NMS across crops (masks of smaller crops first), then the kept masks at the image's resolution."""
    if len(per_crop) > 1:
        sizes = [len(c.ious) for c in per_crop]
        boxes = np.concatenate([c.boxes for c in per_crop])
        prefer = np.concatenate([np.full(n, 1.0 / _area(c.crop_box)) for c, n in zip(per_crop, sizes)])
        keep = box_nms(boxes, prefer, s.crop_nms_thresh)
        owner = np.repeat(np.arange(len(per_crop)), sizes)
        starts = np.cumsum([0, *sizes])
        per_crop = [c.take(np.sort(keep[owner[keep] == i]) - starts[i]) for i, c in enumerate(per_crop)]
    height, width = image_hw
    results: list[AutoMask] = []
    for c in per_crop:
        x0, y0, x1, y1 = c.crop_box
        chunk = max(1, _UPSAMPLE_PIXELS // ((y1 - y0) * (x1 - x0)))
        for start in range(0, len(c.ious), chunk):
            low = c.logits[start : start + chunk]
            inner = (resize_bilinear(low[:, None], (y1 - y0, x1 - x0))[:, 0] > s.mask_threshold).cpu().numpy()
            for i, crop_mask in enumerate(inner, start):
                area = int(np.count_nonzero(crop_mask))
                if area == 0:
                    continue
                mask = np.zeros((height, width), dtype=bool)
                mask[y0:y1, x0:x1] = crop_mask
                results.append(AutoMask(
                    mask=mask, area=area, box=mask_box(mask), predicted_iou=float(c.ious[i]),
                    stability_score=float(c.stability[i]), point=(float(c.points[i][0]), float(c.points[i][1])),
                    crop_box=c.crop_box,
                ))
    if s.min_mask_region_area > 0:
        results = _remove_small(results, s)
    return results


def _area(box) -> float:
    return float((box[2] - box[0]) * (box[3] - box[1]))


def _remove_small(results: list[AutoMask], s: AutoMaskSettings) -> list[AutoMask]:
    """Fill small holes, remove small islands, drop small masks, then NMS again (masks changed)."""
    cleaned = []
    for m in results:
        mask, changed = remove_small_regions(m.mask, s.min_mask_region_area)
        if changed:
            m = AutoMask(mask, int(mask.sum()), mask_box(mask), m.predicted_iou, m.stability_score, m.point, m.crop_box)
        if m.area >= s.min_mask_region_area:
            cleaned.append(m)
    if len(cleaned) < 2:
        return cleaned
    keep = box_nms(np.array([m.box for m in cleaned]), np.array([m.predicted_iou for m in cleaned]), s.box_nms_thresh)
    return [cleaned[i] for i in keep]


def masks_to_labels(masks: list[AutoMask], shape: tuple[int, int]) -> np.ndarray:
    """A label image (H, W) uint16: each pixel goes to the best (highest predicted IoU) mask covering it.

    Ids 1..N follow the order of predicted IoU, best first (for :func:`generate_masks`' list: id =
    index + 1). A mask entirely under better ones leaves no pixel; 0 is background.
    """
    shape = tuple(int(v) for v in shape)
    if len(shape) != 2:
        raise ValueError(f"shape must be (H, W), got {shape}")
    if len(masks) > np.iinfo(np.uint16).max:
        raise ValueError(f"{len(masks)} masks do not fit a uint16 label image (at most 65535)")
    order = sorted(range(len(masks)), key=lambda i: -masks[i].predicted_iou)
    labels = np.zeros(shape, dtype=np.uint16)
    for rank in range(len(order) - 1, -1, -1):  # worst first: better masks paint over
        m = masks[order[rank]].mask
        if m.shape != shape:
            raise ValueError(f"mask {order[rank]} has shape {m.shape}, not {shape}")
        labels[m] = rank + 1
    return labels


def uncovered_masks(masks: list[AutoMask], labels: np.ndarray, max_overlap: float = 0.2) -> list[AutoMask]:
    """The masks that are new relative to a label image (H, W) (e.g. the objects tracked so far):
    those with at most ``max_overlap`` of their area on non-zero labels. Order is kept."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be an (H, W) label image, got shape {labels.shape}")
    number = isinstance(max_overlap, (int, float, np.integer, np.floating)) and not isinstance(max_overlap, bool)
    if not (number and 0.0 <= max_overlap <= 1.0):
        raise ValueError(f"max_overlap must be a fraction in [0, 1], got {max_overlap!r}")
    covered = labels != 0
    out = []
    for i, m in enumerate(masks):
        if m.mask.shape != labels.shape:
            raise ValueError(f"mask {i} has shape {m.mask.shape}, the labels {labels.shape}")
        area = int(m.mask.sum())
        if area and np.count_nonzero(covered & m.mask) <= max_overlap * area:
            out.append(m)
    return out


def _check_int(s: AutoMaskSettings, name: str, low: int, high: int | None = None) -> None:
    v = getattr(s, name)
    ok = isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
    if not ok or v < low or (high is not None and v > high):
        span = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"AutoMaskSettings.{name} must be an integer {span}, got {v!r}")


def _check_float(s: AutoMaskSettings, name: str, low: float, high: float, high_open: bool = False) -> None:
    v = getattr(s, name)
    ok = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
    if ok:
        v = float(v)
        ok = math.isfinite(v) and low <= v and (v < high if high_open else v <= high)
    if not ok:
        if math.isinf(low):
            span = "a finite number"
        elif math.isinf(high):
            span = f"a finite number >= {low}"
        else:
            span = f"a number in [{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"AutoMaskSettings.{name} must be {span}, got {getattr(s, name)!r}")
