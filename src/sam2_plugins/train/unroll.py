"""One training clip through SAM 2, frame by frame through its memory (as Meta's ``SAM2Train``).

The prompted ("conditioning") frames are processed first, then every other frame in order.
A prompted frame gets a ground-truth mask, one click or a noisy box; some prompted frames
(and, with corrections, a random extra frame) then receive corrective clicks sampled from
the error of the current prediction, each re-running the mask decoder with the clicks so
far and the previous mask logits. Every frame's memory (and object pointer) is kept with
its autograd graph, so the loss of later frames trains the memory path end to end.
Each frame reads the memories that :func:`~sam2_plugins.video.memory_select.pick_memories`
names with ``training=True``: the rule tracking uses, with SAM 2's training stride of 1.

Extra losses (a warm-up aid of a from-scratch recipe, say) join through :class:`ClipLoss`
hooks: the unroll calls them at fixed points and sums what they return, so the caller adds
terms without this module knowing them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from ..config import Sam2Config
from ..model.common import resize_bilinear
from ..model.sam2 import ImageFeatures, Sam2Model, SamOutput
from ..video.memory_select import pick_memories
from .losses import LossTerms, step_loss
from .prompts import click_in, corrective_click, noisy_box


@dataclass
class PromptSettings:
    """How prompts are sampled for a training clip (defaults: SAM 2.1's training recipe)."""

    prob_points: float = 0.5  # else the ground-truth mask is the prompt of the prompted frames
    prob_box: float = 0.5  # among point prompts: a noisy box instead of one click
    max_init_cond_frames: int = 2  # 1..this many prompted frames (frame 0 always)
    max_corrected_frames: int = 2  # frames that get corrective clicks (prompted ones first)
    num_correction_points: int = 7  # corrective clicks per corrected frame
    prob_correct_from_gt: float = 0.1  # a correction drawn from the GT mask instead of the error
    box_noise_px: float | None = None  # box corner noise bound; None: 20 px scaled to the input size


@dataclass
class ClipPlan:
    """Which frames are prompted, with what, and which get corrective clicks."""

    init_cond: list[int]
    kinds: dict[int, str]  # frame -> "mask" | "click" | "box"
    correct: list[int] = field(default_factory=list)
    num_corrections: int = 0


def plan_clip(num_frames: int, rng: np.random.Generator, s: PromptSettings) -> ClipPlan:
    """Draw a prompt plan for a clip (frame 0 is always prompted)."""
    use_points = num_frames == 1 or rng.random() < s.prob_points
    n_init = 1
    if s.max_init_cond_frames > 1 and num_frames > 1:
        n_init = int(rng.integers(1, min(s.max_init_cond_frames, num_frames), endpoint=True))
    init = [0] + sorted(int(t) for t in rng.choice(np.arange(1, num_frames), n_init - 1, replace=False))
    if not use_points:
        return ClipPlan(init, {t: "mask" for t in init})
    kinds = {t: ("box" if rng.random() < s.prob_box else "click") for t in init}
    correct = list(init)
    rest = [t for t in range(num_frames) if t not in init]
    n_correct = max(len(init), min(s.max_corrected_frames, num_frames))
    if n_correct > len(init) and rest:
        extra = int(rng.integers(0, n_correct - len(init), endpoint=True))
        correct += sorted(int(t) for t in rng.choice(rest, min(extra, len(rest)), replace=False))
    return ClipPlan(init, kinds, correct if s.num_correction_points > 0 else [], s.num_correction_points)


class ClipLoss:
    """An extra loss of a training clip, computed from what :func:`unroll_clip` sees.

    Per clip the unroll calls ``begin(model)``, then ``features(feats, labels)`` once every frame
    of the clip is encoded (``labels``: the clip's instance labels when ``uses_labels``, else
    None), then for each frame ``before_prompt(kind)`` and ``after_prompt(kind, target)`` around
    the decoder call that reads the frame's own prompt ("click", "box", "mask" or None for a
    tracked frame; corrective clicks are not wrapped), and ``end()`` last, also when the clip
    fails. ``features`` and ``after_prompt`` return a scalar loss or None; the clip's value of
    the loss is the sum of what they return (0 when nothing). Override what you need.
    """

    uses_labels: bool = False

    def begin(self, model: Sam2Model) -> None:
        pass

    def features(self, feats: ImageFeatures, labels: torch.Tensor | None) -> torch.Tensor | None:
        return None

    def before_prompt(self, kind: str | None) -> None:
        pass

    def after_prompt(self, kind: str | None, target: torch.Tensor) -> torch.Tensor | None:
        return None

    def end(self) -> None:
        pass


@dataclass
class _Memory:
    feats: torch.Tensor  # (B, mem_dim, h, w)
    pos: torch.Tensor
    obj_ptr: torch.Tensor  # (B, C)


@dataclass
class ClipResult:
    loss: LossTerms
    masks: list[torch.Tensor]  # per frame, (B, 1, S, S) final mask logits (detached)
    scores: list[torch.Tensor]  # per frame, (B, 1) object-score logits (detached)
    extra: dict[str, torch.Tensor] = field(default_factory=dict)  # each extra loss by name (0: nothing added)


def _with_memory(model: Sam2Model, feats: ImageFeatures, frame: int, cond: dict[int, _Memory],
                 non_cond: dict[int, _Memory], ptr_cfg: Sam2Config, ptr_span: int) -> torch.Tensor:
    """Frame features conditioned on the memories the shared rule picks (training stride)."""
    pick = pick_memories(ptr_cfg, frame, list(cond), non_cond, ptr_span, training=True)
    tokens, codes = [], []
    for t_pos, t, is_cond in pick.spatial:
        mem = cond[t] if is_cond else non_cond[t]
        tok, code = model.memory_tokens(mem.feats, mem.pos, t_pos)
        tokens.append(tok)
        codes.append(code)
    n_ptr = 0
    if pick.pointers:
        ptrs = torch.stack([(cond[t] if is_cond else non_cond[t]).obj_ptr for _, t, is_cond in pick.pointers])
        tok, code = model.pointer_tokens(ptrs, [d for d, _, _ in pick.pointers], pick.max_ptrs)
        tokens.append(tok)
        codes.append(code)
        n_ptr = tok.shape[1]
    return model.attend_memory(feats, torch.cat(tokens, 1), torch.cat(codes, 1), n_ptr)


def _pointer_window(cfg: Sam2Config, ptr_frames: int, num_frames: int) -> tuple[Sam2Config, int]:
    """(config, video length) to pick memories with, so that the pointers' temporal code spans
    ``ptr_frames`` frames while a clip longer than that still reads its own earlier frames."""
    if ptr_frames >= num_frames:
        return cfg, ptr_frames
    return replace(cfg, max_obj_ptrs_in_encoder=min(ptr_frames, cfg.max_obj_ptrs_in_encoder)), num_frames


def unroll_clip(
    model: Sam2Model,
    pixels: torch.Tensor,
    gt: torch.Tensor,
    plan: ClipPlan,
    settings: PromptSettings,
    gen: torch.Generator,
    rng: np.random.Generator,
    *,
    ptr_frames: int | None = None,
    autocast: bool = False,
    loss_size: int | None = None,
    focal_alpha: float = 0.25,
    object_clip: list[int] | None = None,
    labels: torch.Tensor | None = None,
    neighbour_weight: float = 0.0,
    absent_weight: float = 1.0,
    unscored: torch.Tensor | None = None,
    extra_losses: Mapping[str, ClipLoss] | None = None,
) -> ClipResult:
    """Run a clip and return its summed loss.

    pixels (T, 3, S, S) normalised model input; gt (T, B, 1, S, S) bool target masks of B objects.
    A batch of K clips: pixels (K * T, 3, S, S), clip after clip, and ``object_clip`` naming
    each object's clip (see :func:`~sam2_plugins.train.data.batch_clips`); they share ``plan``.
    ``ptr_frames``: the video length assumed for the object pointers' temporal code (SAM 2
    uses the clip length in training; pass the typical inference length to match inference).
    ``loss_size``: side at which mask losses are taken (None: the input size, as SAM 2); smaller
    sides compare the bilinearly upsampled low-res logits with area-downsampled (soft) targets.
    ``labels`` (rows as ``pixels``, (K * T, S, S) instance ids): with ``neighbour_weight``, this
    much extra focal weight on the pixels of other instances (a mask that spills into a touching
    cell costs more than one that spills into background); extra losses that use labels read
    them too. ``absent_weight`` scales the presence loss where an object is absent.
    ``unscored`` (T, B) bool leaves those frames out of each object's losses.
    ``extra_losses``: :class:`ClipLoss` hooks by name; their values come back in ``extra``.
    """
    num_frames, b = gt.shape[0], gt.shape[1]
    size = pixels.shape[-1]
    cfg = model.config
    device = pixels.device
    ptr_cfg, ptr_span = _pointer_window(cfg, ptr_frames or num_frames, num_frames)
    box_bound = settings.box_noise_px if settings.box_noise_px is not None else 20.0 * size / 1024
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast)
    hooks = dict(extra_losses or {})
    extra: dict[str, torch.Tensor | None] = dict.fromkeys(hooks)

    def add(name: str, value: torch.Tensor | None) -> None:
        if value is not None:
            extra[name] = value if extra[name] is None else extra[name] + value

    for hook in hooks.values():
        hook.begin(model)
    try:
        with amp:
            all_feats = model.encode_image(pixels)
        for name, hook in hooks.items():
            add(name, hook.features(all_feats, labels if hook.uses_labels else None))
        cond: dict[int, _Memory] = {}
        non_cond: dict[int, _Memory] = {}
        loss = LossTerms.zero(device)
        # row of pixels of object j on frame t: row0[j] + t
        row0 = None if object_clip is None else torch.tensor(object_clip, device=device) * num_frames
        masks: list[torch.Tensor | None] = [None] * num_frames
        scores: list[torch.Tensor | None] = [None] * num_frames
        order = plan.init_cond + [t for t in range(num_frames) if t not in plan.init_cond]
        for t in order:
            target = gt[t]
            feats = all_feats.index(t).expand(b) if row0 is None else all_feats.select(row0 + t)
            is_init = t in plan.init_cond
            kind = plan.kinds.get(t)
            coords = point_labels = None
            steps: list[SamOutput] = []
            with amp:
                if kind == "mask" and cfg.use_mask_input_as_output_without_sam:
                    sam = model.mask_as_output(feats.embed, feats.high_res, target.float())
                    pix = None
                else:
                    if is_init:
                        pix = model.without_memory(feats)
                    else:
                        pix = _with_memory(model, feats, t, cond, non_cond, ptr_cfg, ptr_span)
                    mask_in = None
                    if kind == "click":
                        coords, point_labels = click_in(target, gen)
                    elif kind == "box":
                        coords, point_labels = noisy_box(target, gen, bound=box_bound)
                    elif kind == "mask":
                        mask_in = target.float()
                    n_pts = 0 if point_labels is None else point_labels.shape[1]
                    for hook in hooks.values():
                        hook.before_prompt(kind)
                    sam = model.sam_heads(pix, feats.high_res, coords, point_labels, mask_in,
                                          multimask=model.use_multimask(is_init, n_pts))
                    for name, hook in hooks.items():
                        add(name, hook.after_prompt(kind, target))
                steps.append(sam)
                if t in plan.correct and pix is not None:
                    for _ in range(plan.num_corrections):
                        from_gt = settings.prob_correct_from_gt > 0 and rng.random() < settings.prob_correct_from_gt
                        pred = None if from_gt else sam.high_res_masks > 0
                        new_xy, new_lab = corrective_click(target, pred, gen)
                        coords = new_xy if coords is None else torch.cat([coords, new_xy], 1)
                        point_labels = new_lab if point_labels is None else torch.cat([point_labels, new_lab], 1)
                        prev = sam.low_res_masks.clamp(-32.0, 32.0)  # as SAM 2 feeds previous logits
                        sam = model.sam_heads(pix, feats.high_res, coords, point_labels, prev,
                                              multimask=model.use_multimask(is_init, point_labels.shape[1]))
                        steps.append(sam)
                if t != order[-1]:  # no later frame reads the last frame's memory
                    mem_feats, mem_pos = model.encode_memory(feats.embed, sam.high_res_masks,
                                                             sam.object_score_logits,
                                                             from_points=point_labels is not None)
                    memory = _Memory(mem_feats, mem_pos, sam.obj_ptr)
                    if is_init or t in plan.correct:
                        cond[t] = memory
                    else:
                        non_cond[t] = memory
            with torch.autocast(device.type, enabled=False):
                small = loss_size is not None and loss_size != size
                tgt = F.interpolate(target.float(), size=(loss_size, loss_size), mode="area") if small \
                    else target.float()
                weight = None
                if neighbour_weight > 0 and labels is not None:
                    rows = labels[t].expand(b, -1, -1) if row0 is None else labels[row0 + t]  # (B, S, S)
                    others = ((rows[:, None] > 0) & ~target.bool()).float()  # (B, 1, S, S)
                    if small:
                        others = F.interpolate(others, size=(loss_size, loss_size), mode="area")
                    weight = 1.0 + neighbour_weight * others
                scored = None if unscored is None else (~unscored[t]).float()[:, None]  # (B, 1)
                for out in steps:
                    pred = resize_bilinear(out.low_res_multimasks, (loss_size, loss_size)) if small \
                        else out.high_res_multimasks
                    loss = loss + step_loss(pred, out.ious, out.object_score_logits, tgt, b, focal_alpha, weight,
                                            absent_weight, scored)
            masks[t] = sam.high_res_masks.detach().float()
            scores[t] = sam.object_score_logits.detach().float()
    finally:
        for hook in hooks.values():
            hook.end()
    values = {name: torch.zeros((), device=device) if v is None else v for name, v in extra.items()}
    return ClipResult(loss, masks, scores, values)  # type: ignore[arg-type]
