"""SAM 2's training losses: focal + dice on masks (best of the multimask outputs), IoU and presence.

As in SAM 2 (``MultiStepMultiMasksAndIous`` with the SAM 2.1 training weights): for every
prediction step of every frame, focal (weight 20) and dice (1) are taken on the one output
mask with the lowest focal*20 + dice; the IoU head is regressed (L1, weight 1) on all
outputs against the actual IoU of each mask; the object-presence logit gets a BCE (1).
Mask and IoU terms count only where the object is present in the ground truth. All terms
are divided by the number of objects and summed over frames and steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

WEIGHTS = {"focal": 20.0, "dice": 1.0, "iou": 1.0, "presence": 1.0}


@dataclass
class LossTerms:
    """Summed (unweighted) loss terms and their weighted total."""

    focal: torch.Tensor
    dice: torch.Tensor
    iou: torch.Tensor
    presence: torch.Tensor

    @property
    def total(self) -> torch.Tensor:
        return (WEIGHTS["focal"] * self.focal + WEIGHTS["dice"] * self.dice
                + WEIGHTS["iou"] * self.iou + WEIGHTS["presence"] * self.presence)

    def __add__(self, other: LossTerms) -> LossTerms:
        return LossTerms(self.focal + other.focal, self.dice + other.dice, self.iou + other.iou,
                         self.presence + other.presence)

    def as_floats(self) -> dict[str, float]:
        with torch.no_grad():
            return {"loss": float(self.total), "focal": float(self.focal), "dice": float(self.dice),
                    "iou": float(self.iou), "presence": float(self.presence)}

    @staticmethod
    def zero(device=None) -> LossTerms:
        z = torch.zeros((), device=device)
        return LossTerms(z, z, z, z)


def focal_per_mask(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0,
                   pixel_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Sigmoid focal loss averaged over pixels: (B, K, H, W) -> (B, K); ``pixel_weight``
    (B, 1, H, W) scales each pixel's term."""
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = prob * target + (1 - prob) * (1 - target)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    if pixel_weight is not None:
        loss = loss * pixel_weight
    return loss.flatten(2).mean(-1)


def dice_per_mask(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Soft dice loss (with +1 smoothing): (B, K, H, W) -> (B, K)."""
    prob = logits.sigmoid().flatten(2)
    tgt = target.flatten(2)
    return 1 - (2 * (prob * tgt).sum(-1) + 1) / (prob.sum(-1) + tgt.sum(-1) + 1)


def actual_iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU of each thresholded mask with the (possibly soft) target: (B, K, H, W) -> (B, K)."""
    pred = logits.flatten(2) > 0
    gt = target.flatten(2) > 0.5
    inter = (pred & gt).sum(-1).float()
    union = (pred | gt).sum(-1).float()
    return inter / union.clamp(min=1.0)


def step_loss(
    multimasks: torch.Tensor, ious: torch.Tensor, object_score_logits: torch.Tensor, target: torch.Tensor,
    num_objects: int, focal_alpha: float = 0.25, pixel_weight: torch.Tensor | None = None,
    absent_weight: float = 1.0, object_weight: torch.Tensor | None = None,
) -> LossTerms:
    """Loss of one prediction step.

    multimasks (B, K, H, W) mask logits at the target's resolution, ious (B, K) predicted IoUs,
    object_score_logits (B, 1), target (B, 1, H, W) float in [0, 1] (area-downsampled targets
    are soft at object borders). ``focal_alpha``: weight of object pixels in the focal term
    (SAM 2: 0.25; a from-scratch warm-up may start near 1 so that "no mask" is not a minimum).
    ``pixel_weight`` (B, 1, H, W): focal weight of each pixel (None: 1 everywhere).
    ``absent_weight``: presence weight of objects absent from the target (SAM 2: 1).
    ``object_weight`` (B, 1): weight of each object's terms (0 leaves a frame out; None: 1).
    """
    multimasks = multimasks.float()
    target = target.float().expand_as(multimasks)
    focal = focal_per_mask(multimasks, target, alpha=focal_alpha, pixel_weight=pixel_weight)
    dice = dice_per_mask(multimasks, target)
    iou = F.l1_loss(ious.float(), actual_iou(multimasks, target), reduction="none")
    present = (target[:, 0].flatten(1) > 0).any(-1, keepdim=True).float()  # (B, 1)
    if multimasks.shape[1] > 1:
        best = (focal * WEIGHTS["focal"] + dice * WEIGHTS["dice"]).argmin(-1)
        rows = torch.arange(multimasks.shape[0], device=multimasks.device)
        focal, dice = focal[rows, best][:, None], dice[rows, best][:, None]
        iou = iou.mean(-1, keepdim=True)  # supervise all IoU outputs (SAM 2.1 training setting)
    presence = F.binary_cross_entropy_with_logits(object_score_logits.float(), present, reduction="none")
    if absent_weight != 1.0:
        presence = presence * (present + absent_weight * (1 - present))
    scored = present  # weight of the mask and IoU terms: only where the object is present
    if object_weight is not None:
        scored, presence = present * object_weight, presence * object_weight
    return LossTerms(
        (focal * scored).sum() / num_objects,
        (dice * scored).sum() / num_objects,
        (iou * scored).sum() / num_objects,
        presence.sum() / num_objects,
    )
