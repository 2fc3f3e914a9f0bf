"""One training clip through SAM 2, frame by frame through its memory (as Meta's ``SAM2Train``).

The prompted ("conditioning") frames are processed first, then every other frame in order.
A prompted frame gets a ground-truth mask, one click or a noisy box; some prompted frames
(and, with corrections, a random extra frame) then receive corrective clicks sampled from
the error of the current prediction, each re-running the mask decoder with the clicks so
far and the previous mask logits. Every frame's memory (and object pointer) is kept with
its autograd graph, so the loss of later frames trains the memory path end to end.
Memory selection follows SAM 2's training rules (stride 1, pointers of every conditioning
frame, up to ``max_obj_ptrs_in_encoder - 1`` earlier frames).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..model.common import resize_bilinear
from ..model.sam2 import ImageFeatures, Sam2Model, SamOutput
from .instance_aux import instance_grouping_loss
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


@dataclass
class _Memory:
    feats: torch.Tensor  # (B, mem_dim, h, w)
    pos: torch.Tensor
    obj_ptr: torch.Tensor  # (B, C)


@dataclass
class ClipResult:
    loss: LossTerms
    aux: torch.Tensor  # click-attention warm-up loss (0 unless requested)
    masks: list[torch.Tensor]  # per frame, (B, 1, S, S) final mask logits (detached)
    scores: list[torch.Tensor]  # per frame, (B, 1) object-score logits (detached)
    instance: torch.Tensor  # instance-grouping loss of the image features (0 unless requested)


def _closest_cond(frame: int, cond: dict[int, _Memory], max_num: int):
    if max_num == -1 or len(cond) <= max_num:
        return dict(cond), {}
    before = max((t for t in cond if t < frame), default=None)
    after = min((t for t in cond if t >= frame), default=None)
    chosen = {t: cond[t] for t in (before, after) if t is not None}
    for t in sorted((t for t in cond if t not in chosen), key=lambda t: abs(t - frame))[: max_num - len(chosen)]:
        chosen[t] = cond[t]
    return chosen, {t: v for t, v in cond.items() if t not in chosen}


def _with_memory(model: Sam2Model, feats: ImageFeatures, frame: int, cond: dict[int, _Memory],
                 non_cond: dict[int, _Memory], ptr_frames: int) -> torch.Tensor:
    """Frame features conditioned on the memory bank (training selection rules)."""
    cfg = model.config
    selected, unselected = _closest_cond(frame, cond, cfg.max_cond_frames_in_attn)
    spatial = [(0, m) for m in selected.values()]
    for t_pos in range(1, cfg.num_maskmem):
        prev = frame - (cfg.num_maskmem - t_pos)
        mem = non_cond.get(prev, unselected.get(prev))
        if mem is not None:
            spatial.append((t_pos, mem))
    tokens, codes = [], []
    for t_pos, mem in spatial:
        tok, code = model.memory_tokens(mem.feats, mem.pos, t_pos)
        tokens.append(tok)
        codes.append(code)
    n_ptr = 0
    if cfg.use_obj_ptrs_in_encoder:
        max_ptrs = min(ptr_frames, cfg.max_obj_ptrs_in_encoder)
        ptrs = [((frame - t) if cfg.use_signed_tpos_enc_to_obj_ptrs else abs(frame - t), m.obj_ptr)
                for t, m in selected.items()]
        for t_diff in range(1, max_ptrs):
            t = frame - t_diff
            if t < 0:
                break
            mem = non_cond.get(t, unselected.get(t))
            if mem is not None:
                ptrs.append((t_diff, mem.obj_ptr))
        if ptrs:
            tok, code = model.pointer_tokens(torch.stack([p for _, p in ptrs]), [d for d, _ in ptrs], max_ptrs)
            tokens.append(tok)
            codes.append(code)
            n_ptr = tok.shape[1]
    return model.attend_memory(feats, torch.cat(tokens, 1), torch.cat(codes, 1), n_ptr)


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
    attn_aux: bool = False,
    focal_alpha: float = 0.25,
    object_clip: list[int] | None = None,
    labels: torch.Tensor | None = None,
    instance_aux: bool = False,
    neighbour_weight: float = 0.0,
    absent_weight: float = 1.0,
    unscored: torch.Tensor | None = None,
) -> ClipResult:
    """Run a clip and return its summed loss.

    pixels (T, 3, S, S) normalised model input; gt (T, B, 1, S, S) bool target masks of B objects.
    A batch of K clips: pixels (K * T, 3, S, S), clip after clip, and ``object_clip`` naming
    each object's clip (see :func:`~sam2_plugins.train.data.batch_clips`); they share ``plan``.
    ``ptr_frames``: the video length assumed for the object pointers' temporal code (SAM 2
    uses the clip length in training; pass the typical inference length to match inference).
    ``loss_size``: side at which mask losses are taken (None: the input size, as SAM 2); smaller
    sides compare the bilinearly upsampled low-res logits with area-downsampled (soft) targets.
    ``attn_aux``: also return the click-attention warm-up loss (see :mod:`.attn_aux`).
    ``labels`` (rows as ``pixels``, (K * T, S, S) instance ids) serve two options:
    ``instance_aux`` also returns the instance-grouping loss of the image features (see
    :mod:`.instance_aux`); ``neighbour_weight`` adds this much focal weight on the pixels of other
    instances (a mask that spills into a touching cell costs more than one that spills into
    background). ``absent_weight`` scales the presence loss where an object is absent.
    ``unscored`` (T, B) bool leaves those frames out of each object's losses.
    """
    num_frames, b = gt.shape[0], gt.shape[1]
    size = pixels.shape[-1]
    cfg = model.config
    device = pixels.device
    ptr_frames = ptr_frames or num_frames
    box_bound = settings.box_noise_px if settings.box_noise_px is not None else 20.0 * size / 1024
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast)
    with amp:
        all_feats = model.encode_image(pixels)
    instance = torch.zeros((), device=device)
    if instance_aux and labels is not None:
        instance = instance_grouping_loss([all_feats.embed, *all_feats.high_res], labels)
    cond: dict[int, _Memory] = {}
    non_cond: dict[int, _Memory] = {}
    loss = LossTerms.zero(device)
    aux = torch.zeros((), device=device)
    probe = None
    if attn_aux:
        from .attn_aux import ClickAttentionProbe

        first_prompt_token = 2 + model.sam_mask_decoder.num_mask_tokens if cfg.pred_obj_scores else \
            1 + model.sam_mask_decoder.num_mask_tokens
        probe = ClickAttentionProbe(model, first_prompt_token)
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
                    pix = _with_memory(model, feats, t, cond, non_cond, ptr_frames)
                mask_in = None
                if kind == "click":
                    coords, point_labels = click_in(target, gen)
                elif kind == "box":
                    coords, point_labels = noisy_box(target, gen, bound=box_bound)
                elif kind == "mask":
                    mask_in = target.float()
                n_pts = 0 if point_labels is None else point_labels.shape[1]
                if probe is not None:
                    probe.active = kind == "click"
                sam = model.sam_heads(pix, feats.high_res, coords, point_labels, mask_in,
                                      multimask=model.use_multimask(is_init, n_pts))
                if probe is not None and probe.active:
                    probe.active = False
                    aux = aux + probe.loss(target)
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
                mem_feats, mem_pos = model.encode_memory(feats.embed, sam.high_res_masks, sam.object_score_logits,
                                                         from_points=point_labels is not None)
                memory = _Memory(mem_feats, mem_pos, sam.obj_ptr)
                if is_init or t in plan.correct:
                    cond[t] = memory
                else:
                    non_cond[t] = memory
        with torch.autocast(device.type, enabled=False):
            small = loss_size is not None and loss_size != size
            tgt = F.interpolate(target.float(), size=(loss_size, loss_size), mode="area") if small else target.float()
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
    if probe is not None:
        probe.close()
    return ClipResult(loss, aux, masks, scores, instance)  # type: ignore[arg-type]
