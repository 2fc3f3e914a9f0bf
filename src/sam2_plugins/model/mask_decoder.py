"""Mask decoder: prompt + image embeddings to mask logits, IoU and object scores. Prefix ``sam_mask_decoder``."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .common import MLP, LayerNorm2d
from .transformer import TwoWayTransformer


@dataclass
class DecoderOutput:
    masks: torch.Tensor  # (B, K, 4h, 4w) low-resolution mask logits
    ious: torch.Tensor  # (B, K) predicted IoU
    tokens: torch.Tensor  # (B, K', C) mask tokens for the object pointer (K' = 3 or 1)
    object_score_logits: torch.Tensor  # (B, 1) > 0 when the object is present


class MaskDecoder(nn.Module):
    def __init__(
        self,
        transformer_dim: int,
        use_high_res_features: bool,
        iou_prediction_use_sigmoid: bool,
        pred_obj_scores: bool,
        pred_obj_scores_mlp: bool,
        use_multimask_token_for_obj_ptr: bool,
        dynamic_multimask_via_stability: bool,
        dynamic_multimask_stability_delta: float,
        dynamic_multimask_stability_thresh: float,
        num_multimask_outputs: int = 3,
    ) -> None:
        super().__init__()
        dim = transformer_dim
        self.transformer = TwoWayTransformer(depth=2, embedding_dim=dim, num_heads=8, mlp_dim=2048)
        self.num_mask_tokens = num_multimask_outputs + 1
        self.iou_token = nn.Embedding(1, dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, dim)
        self.pred_obj_scores = pred_obj_scores
        if pred_obj_scores:
            self.obj_score_token = nn.Embedding(1, dim)
        self.use_multimask_token_for_obj_ptr = use_multimask_token_for_obj_ptr
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(dim, dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(dim // 4, dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.use_high_res_features = use_high_res_features
        if use_high_res_features:
            self.conv_s0 = nn.Conv2d(dim, dim // 8, kernel_size=1)
            self.conv_s1 = nn.Conv2d(dim, dim // 4, kernel_size=1)
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(dim, dim, dim // 8, 3) for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(dim, 256, self.num_mask_tokens, 3, sigmoid_output=iou_prediction_use_sigmoid)
        if pred_obj_scores:
            self.pred_obj_score_head = MLP(dim, dim, 1, 3) if pred_obj_scores_mlp else nn.Linear(dim, 1)
        self.dynamic_multimask = dynamic_multimask_via_stability
        self.stability_delta = dynamic_multimask_stability_delta
        self.stability_thresh = dynamic_multimask_stability_thresh

    def forward(
        self,
        image_embed: torch.Tensor,
        image_pe: torch.Tensor,
        sparse: torch.Tensor,
        dense: torch.Tensor,
        multimask_output: bool,
        high_res_features: list[torch.Tensor] | None = None,
    ) -> DecoderOutput:
        """image_embed (B, C, h, w) [or (1, C, h, w), shared], sparse (B, N, C), dense (B, C, h, w)."""
        masks, ious, mask_tokens, obj_scores = self._predict(image_embed, image_pe, sparse, dense, high_res_features)
        if multimask_output:
            masks, ious = masks[:, 1:], ious[:, 1:]
        elif self.dynamic_multimask and not self.training:
            masks, ious = self._pick_stable(masks, ious)
        else:
            masks, ious = masks[:, :1], ious[:, :1]
        tokens = mask_tokens[:, 1:] if multimask_output and self.use_multimask_token_for_obj_ptr else mask_tokens[:, :1]
        return DecoderOutput(masks, ious, tokens, obj_scores)

    def _predict(self, image_embed, image_pe, sparse, dense, high_res_features):
        b = sparse.shape[0]
        parts = [self.iou_token.weight, self.mask_tokens.weight]
        if self.pred_obj_scores:
            parts.insert(0, self.obj_score_token.weight)
        s = 1 if self.pred_obj_scores else 0
        output_tokens = torch.cat(parts, dim=0)[None].expand(b, -1, -1)
        tokens = torch.cat([output_tokens, sparse], dim=1)
        src = image_embed.expand(b, -1, -1, -1) + dense
        pos = image_pe.expand(b, -1, -1, -1)
        _, c, h, w = src.shape
        hs, src = self.transformer(src, pos, tokens)
        iou_token_out = hs[:, s]
        mask_tokens_out = hs[:, s + 1 : s + 1 + self.num_mask_tokens]
        src = src.transpose(1, 2).reshape(b, c, h, w)
        if self.use_high_res_features:
            up1, norm1, act1, up2, act2 = self.output_upscaling
            feat_s0, feat_s1 = high_res_features
            up = act1(norm1(up1(src) + feat_s1))
            up = act2(up2(up) + feat_s0)
        else:
            up = self.output_upscaling(src)
        hyper = torch.stack(
            [mlp(mask_tokens_out[:, i]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1
        )  # (B, K, C/8)
        b, c8, uh, uw = up.shape
        masks = (hyper @ up.reshape(b, c8, uh * uw)).reshape(b, -1, uh, uw)
        ious = self.iou_prediction_head(iou_token_out)
        if self.pred_obj_scores:
            obj_scores = self.pred_obj_score_head(hs[:, 0])
        else:
            obj_scores = 10.0 * ious.new_ones(ious.shape[0], 1)
        return masks, ious, mask_tokens_out, obj_scores

    def _pick_stable(self, masks: torch.Tensor, ious: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keep the single-mask output when it is stable, else the best of the three multimask outputs."""
        multi, multi_iou = masks[:, 1:], ious[:, 1:]
        best = multi_iou.argmax(dim=-1)
        rows = torch.arange(multi.shape[0], device=masks.device)
        best_mask, best_iou = multi[rows, best][:, None], multi_iou[rows, best][:, None]
        single, single_iou = masks[:, :1], ious[:, :1]
        flat = single.flatten(-2)
        inter = (flat > self.stability_delta).sum(-1).float()
        union = (flat > -self.stability_delta).sum(-1).float()
        stability = torch.where(union > 0, inter / union, 1.0)
        stable = stability >= self.stability_thresh  # (B, 1)
        return (
            torch.where(stable[..., None, None], single, best_mask),
            torch.where(stable, single_iou, best_iou),
        )
