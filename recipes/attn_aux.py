"""Warm-up auxiliary loss for training from scratch: where the image looks at the click.

A randomly initialised mask decoder sits on a long plateau before its prompt tokens learn to
localise anything: the image tokens' attention to a click must become spatially selective
and, at the same time, the mask read-out must use it -- neither gets a gradient without the
other. This loss breaks the tie during the first steps of a from-scratch run: in every
two-way transformer layer, the attention of each image token to the (first) positive click
token is pushed towards the clicked object's ground-truth mask at the token grid. Only
training uses it (with a weight that decays to zero); the model and inference are unchanged.

:class:`ClickAttentionLoss` hands it to the trainer as an extra loss
(``Trainer(extra_losses={"attn_aux": ClickAttentionLoss()})``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from sam2_plugins.train.unroll import ClipLoss


class ClickAttentionProbe:
    """Records image-to-token attention to one token index while active (forward hooks)."""

    def __init__(self, model, token_index: int) -> None:
        self.token_index = token_index
        self.maps: list[torch.Tensor] = []
        self.active = False
        layers = model.sam_mask_decoder.transformer.layers
        self._handles = [layer.cross_attn_image_to_token.register_forward_hook(self._hook) for layer in layers]

    def _hook(self, module, args, output) -> None:
        if not self.active:
            return
        q, k, _ = args  # image tokens (+PE) as queries, prompt tokens (+PE) as keys
        qh = module._heads(module.q_proj(q))
        kh = module._heads(module.k_proj(k))
        att = torch.softmax((qh @ kh.transpose(-1, -2)).float() / math.sqrt(qh.shape[-1]), dim=-1)
        self.maps.append(att[..., self.token_index].mean(1))  # (B, HW) averaged over heads

    def close(self) -> None:
        for h in self._handles:
            h.remove()

    def loss(self, target: torch.Tensor) -> torch.Tensor:
        """BCE of the recorded maps against target masks (B, 1, S, S), area-pooled to the grid."""
        if not self.maps:
            return target.new_zeros(())
        side = math.isqrt(self.maps[0].shape[-1])
        tgt = F.interpolate(target.float(), size=(side, side), mode="area").flatten(1)
        out = sum(F.binary_cross_entropy(m.clamp(1e-4, 1 - 1e-4), tgt) for m in self.maps)
        self.maps.clear()
        return out  # summed over layers, averaged over objects


class ClickAttentionLoss(ClipLoss):
    """The probe's loss on every frame prompted with a click (its first decoder call only)."""

    def __init__(self) -> None:
        self.probe: ClickAttentionProbe | None = None

    def begin(self, model) -> None:
        decoder = model.sam_mask_decoder
        # the prompt tokens follow the output tokens: object score (if any), IoU, then one per mask
        first_prompt_token = (2 if model.config.pred_obj_scores else 1) + decoder.num_mask_tokens
        self.probe = ClickAttentionProbe(model, first_prompt_token)

    def before_prompt(self, kind: str | None) -> None:
        self.probe.active = kind == "click"

    def after_prompt(self, kind: str | None, target: torch.Tensor) -> torch.Tensor | None:
        if not self.probe.active:
            return None
        self.probe.active = False
        return self.probe.loss(target)

    def end(self) -> None:
        if self.probe is not None:
            self.probe.close()
            self.probe = None
