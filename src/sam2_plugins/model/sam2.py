"""The SAM 2 network: every part under the checkpoint's names, and its per-frame computations.

State-dict keys are exactly those of Meta's ``sam2*_hiera_*.pt`` checkpoints. All methods
work on a batch of objects (B) at once; tokens are batch-first.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

from ..config import Sam2Config
from .common import MLP, resize_bilinear, sine_1d, tensors_version
from .hiera import Hiera
from .image_encoder import FpnNeck, ImageEncoder
from .mask_decoder import MaskDecoder
from .memory_attention import MemoryAttention
from .memory_encoder import MemoryEncoder
from .prompt_encoder import NOT_A_POINT, PromptEncoder

NO_OBJ_SCORE = -1024.0  # logit given to every pixel of an object judged absent


@dataclass
class ImageFeatures:
    """Backbone output for one or more frames."""

    embed: torch.Tensor  # (B, C, h, w) lowest-resolution features, no memory
    pos: torch.Tensor  # (B, C, h, w) their sine position code
    high_res: list[torch.Tensor]  # [(B, C/8, 4h, 4w), (B, C/4, 2h, 2w)] decoder skip features

    def index(self, i: int) -> "ImageFeatures":
        return ImageFeatures(self.embed[i : i + 1], self.pos[i : i + 1], [f[i : i + 1] for f in self.high_res])

    def select(self, indices: torch.Tensor) -> "ImageFeatures":
        """The features of the given frames, in that order (one row per index)."""
        return ImageFeatures(self.embed[indices], self.pos[indices], [f[indices] for f in self.high_res])

    def expand(self, batch: int) -> "ImageFeatures":
        return ImageFeatures(
            self.embed.expand(batch, -1, -1, -1),
            self.pos.expand(batch, -1, -1, -1),
            [f.expand(batch, -1, -1, -1) for f in self.high_res],
        )

    def to(self, device=None, dtype=None) -> "ImageFeatures":
        return ImageFeatures(
            self.embed.to(device=device, dtype=dtype),
            self.pos.to(device=device, dtype=dtype),
            [f.to(device=device, dtype=dtype) for f in self.high_res],
        )

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in [self.embed, self.pos, *self.high_res])


@dataclass
class SamOutput:
    """Mask decoder results for a batch of objects on one frame (as SAM 2's ``_forward_sam_heads``)."""

    low_res_multimasks: torch.Tensor  # (B, K, S/4, S/4)
    high_res_multimasks: torch.Tensor  # (B, K, S, S)
    ious: torch.Tensor  # (B, K)
    low_res_masks: torch.Tensor  # (B, 1, S/4, S/4) the chosen mask
    high_res_masks: torch.Tensor  # (B, 1, S, S)
    obj_ptr: torch.Tensor  # (B, C) object pointer
    object_score_logits: torch.Tensor  # (B, 1)


class Sam2Model(nn.Module):
    """SAM 2 / 2.1 with Meta's parameter names: the network only. :func:`sam2_plugins.load_model`
    returns it inside a :class:`sam2_plugins.Sam2`."""

    def __init__(self, config: Sam2Config) -> None:
        super().__init__()
        c = config
        self.config = c
        self.hidden_dim = hidden = c.d_model
        self.mem_dim = c.mem_dim
        self.image_size = c.image_size
        trunk = Hiera(
            c.embed_dim, c.num_heads, c.stages, c.global_att_blocks, c.window_pos_embed_bkg_spatial_size,
            c.window_spec, c.q_pool, c.q_stride, c.dim_mul, c.head_mul,
        )
        neck = FpnNeck(hidden, c.backbone_channel_list, c.fpn_top_down_levels, c.fpn_interp_model)
        self.image_encoder = ImageEncoder(trunk, neck, c.scalp)
        self.memory_attention = MemoryAttention(
            hidden, c.mem_dim, c.mem_attn_layers, c.mem_attn_dim_feedforward, c.mem_attn_num_heads,
            c.mem_attn_rope_theta, c.mem_attn_dropout,
        )
        self.memory_encoder = MemoryEncoder(
            hidden, c.mem_dim, c.mask_downsampler_kernel, c.mask_downsampler_stride,
            c.mask_downsampler_padding, c.fuser_layers, c.fuser_kernel, c.fuser_padding,
        )
        self.maskmem_tpos_enc = nn.Parameter(torch.zeros(c.num_maskmem, 1, 1, c.mem_dim))
        self.no_mem_embed = nn.Parameter(torch.zeros(1, 1, hidden))
        self.no_mem_pos_enc = nn.Parameter(torch.zeros(1, 1, hidden))
        if c.pred_obj_scores and c.use_obj_ptrs_in_encoder:
            self.no_obj_ptr = nn.Parameter(torch.zeros(1, hidden))
        if c.no_obj_embed_spatial:
            self.no_obj_embed_spatial = nn.Parameter(torch.zeros(1, c.mem_dim))
        if c.use_obj_ptrs_in_encoder:
            self.mask_downsample = nn.Conv2d(1, 1, kernel_size=4, stride=4)
        self.sam_prompt_encoder = PromptEncoder(hidden, c.feat_size, c.image_size, mask_in_chans=16)
        self.sam_mask_decoder = MaskDecoder(
            hidden, c.use_high_res_features_in_sam, c.iou_prediction_use_sigmoid, c.pred_obj_scores,
            c.pred_obj_scores_mlp, c.use_multimask_token_for_obj_ptr, c.dynamic_multimask_via_stability,
            c.dynamic_multimask_stability_delta, c.dynamic_multimask_stability_thresh,
        )
        if c.use_obj_ptrs_in_encoder:
            self.obj_ptr_proj = MLP(hidden, hidden, hidden, 3) if c.use_mlp_for_obj_ptr_proj else nn.Linear(hidden, hidden)
        else:
            self.obj_ptr_proj = nn.Identity()
        self.obj_ptr_tpos_proj = nn.Linear(hidden, c.mem_dim) if c.proj_tpos_enc_in_obj_ptrs else nn.Identity()
        self._init_weights()

    def _init_weights(self) -> None:
        for p in (self.maskmem_tpos_enc, self.no_mem_embed, self.no_mem_pos_enc):
            nn.init.trunc_normal_(p, std=0.02)
        for name in ("no_obj_ptr", "no_obj_embed_spatial"):
            if hasattr(self, name):
                nn.init.trunc_normal_(getattr(self, name), std=0.02)

    @property
    def device(self) -> torch.device:
        return self.no_mem_embed.device

    # ----------------------------------------------------------------- image
    def encode_image(self, pixels: torch.Tensor) -> ImageFeatures:
        """pixels (B, 3, S, S), normalised -> backbone features of each image."""
        decoder = self.sam_mask_decoder
        # the decoder's 1x1 convolutions of the high-resolution levels (folded into the neck's in inference)
        heads = (decoder.conv_s0, decoder.conv_s1) if self.config.use_high_res_features_in_sam else ()
        feats, pos = self.image_encoder(pixels, heads)
        return ImageFeatures(feats[-1], pos[-1], feats[: len(heads)])

    # ----------------------------------------------------------------- decoder
    def sam_heads(
        self,
        embed: torch.Tensor,
        high_res: list[torch.Tensor],
        point_coords: torch.Tensor | None = None,
        point_labels: torch.Tensor | None = None,
        mask_inputs: torch.Tensor | None = None,
        multimask: bool = False,
    ) -> SamOutput:
        """Decode masks for B objects. Points are model-input pixels (B, N, 2); masks (B, 1, h', w')."""
        with self.float32_section():
            masks = None if mask_inputs is None else mask_inputs.float()
            return self._sam_heads(embed.float(), [f.float() for f in high_res], point_coords, point_labels,
                                   masks, multimask)

    def _sam_heads(self, embed, high_res, point_coords, point_labels, mask_inputs, multimask) -> SamOutput:
        b, device = embed.shape[0], embed.device
        if point_coords is None:
            point_coords = torch.zeros(b, 1, 2, device=device)
            point_labels = torch.full((b, 1), NOT_A_POINT, dtype=torch.int32, device=device)
        prompt = self.sam_prompt_encoder
        if mask_inputs is not None and tuple(mask_inputs.shape[-2:]) != prompt.mask_input_size:
            mask_inputs = resize_bilinear(mask_inputs.float(), prompt.mask_input_size, antialias=True)
        sparse = prompt.embed_points(point_coords, point_labels)
        dense = prompt.embed_mask(mask_inputs, b)
        out = self.sam_mask_decoder(embed, prompt.dense_pe(), sparse, dense, multimask, high_res or None)
        low_multi = out.masks
        if self.config.pred_obj_scores:
            present = out.object_score_logits > 0
            low_multi = torch.where(present[:, None, None], low_multi, NO_OBJ_SCORE)
        low_multi = low_multi.float()
        high_multi = resize_bilinear(low_multi, (self.image_size, self.image_size))
        token = out.tokens[:, 0]
        if multimask:
            best = out.ious.argmax(dim=-1)
            rows = torch.arange(b, device=device)
            low, high = low_multi[rows, best][:, None], high_multi[rows, best][:, None]
            if out.tokens.shape[1] > 1:
                token = out.tokens[rows, best]
        else:
            low, high = low_multi, high_multi
        obj_ptr = self._pointer(self.obj_ptr_proj(token), out.object_score_logits > 0)
        return SamOutput(low_multi, high_multi, out.ious, low, high, obj_ptr, out.object_score_logits)

    def _pointer(self, obj_ptr: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Replace pointers of absent objects by the learned no-object pointer."""
        if not self.config.pred_obj_scores:
            return obj_ptr
        weight = present.to(obj_ptr.dtype)  # (B, 1)
        if self.config.fixed_no_obj_ptr:
            obj_ptr = weight * obj_ptr
        return obj_ptr + (1 - weight) * self.no_obj_ptr

    def mask_as_output(self, embed: torch.Tensor, high_res: list[torch.Tensor], masks: torch.Tensor) -> SamOutput:
        """Use input masks (B, 1, S, S) as the prediction itself; only the pointer comes from the decoder."""
        high = masks.float() * 20.0 - 10.0  # logits: sigmoid(-10) ~ 0
        low = resize_bilinear(high, (high.shape[-2] // 4, high.shape[-1] // 4), antialias=True)
        ious = masks.new_ones(masks.shape[0], 1).float()
        present = (masks.flatten(1).float() > 0).any(dim=1, keepdim=True)
        if self.config.use_obj_ptrs_in_encoder:
            decoded = self.sam_heads(embed, high_res, mask_inputs=self.mask_downsample(masks.float()))
            obj_ptr = decoded.obj_ptr
        else:
            obj_ptr = torch.zeros(masks.shape[0], self.hidden_dim, device=masks.device)
        scores = 20.0 * present.float() - 10.0
        if self.config.pred_obj_scores:
            weight = present.float()
            if self.config.fixed_no_obj_ptr:
                obj_ptr = weight * obj_ptr
            obj_ptr = obj_ptr + (1 - weight) * self.no_obj_ptr
        return SamOutput(low, high, ious, low, high, obj_ptr, scores)

    # ----------------------------------------------------------------- memory
    def encode_memory(
        self, embed: torch.Tensor, high_res_masks: torch.Tensor, object_score_logits: torch.Tensor, from_points: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Memory of a frame from its raw features (B, C, h, w) and mask logits (B, 1, S, S).

        Returns features (B, mem_dim, h, w) and their position code.
        """
        c = self.config
        if c.binarize_mask_from_pts_for_mem_enc and from_points and not self.training:
            mask = (high_res_masks > 0).float()
        else:
            mask = torch.sigmoid(high_res_masks)
        mask = mask * c.sigmoid_scale_for_mem_enc + c.sigmoid_bias_for_mem_enc
        feats, pos = self.memory_encoder(embed, mask.to(embed.dtype))
        if c.no_obj_embed_spatial:
            absent = 1 - (object_score_logits > 0).to(feats.dtype)  # (B, 1)
            feats = feats + absent[..., None, None] * self.no_obj_embed_spatial[..., None, None]
        return feats, pos

    def memory_tokens(self, feats: torch.Tensor, pos: torch.Tensor, t_pos: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One frame's memory as tokens (B, hw, mem_dim) with its temporal code (t_pos 0: prompted frame)."""
        tokens = feats.flatten(2).transpose(1, 2)
        pos = pos.flatten(2).transpose(1, 2) + self.maskmem_tpos_enc[self.config.num_maskmem - t_pos - 1].reshape(1, 1, -1)
        return tokens, pos

    def pointer_tokens(
        self, ptrs: torch.Tensor, t_diffs: list[int], max_ptrs: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Object pointers (P, B, C) at signed frame distances -> tokens (B, P*C/mem_dim, mem_dim) and code."""
        c = self.config
        p, b, hidden = ptrs.shape
        if c.add_tpos_enc_to_obj_ptrs:
            dim = hidden if c.proj_tpos_enc_in_obj_ptrs else self.mem_dim
            t = torch.tensor(t_diffs, device=ptrs.device, dtype=torch.float32) / max(max_ptrs - 1, 1)
            pos = self.obj_ptr_tpos_proj(sine_1d(t, dim))  # (P, mem_dim)
            pos = pos[:, None].expand(p, b, self.mem_dim)
        else:
            pos = ptrs.new_zeros(p, b, self.mem_dim)
        if self.mem_dim < hidden:  # each pointer becomes hidden/mem_dim tokens
            split = hidden // self.mem_dim
            ptrs = ptrs.reshape(p, b, split, self.mem_dim).permute(0, 2, 1, 3).flatten(0, 1)
            pos = pos.repeat_interleave(split, dim=0)
        return ptrs.transpose(0, 1), pos.transpose(0, 1)

    def attend_memory(
        self, features: ImageFeatures, memory: torch.Tensor, memory_pos: torch.Tensor, num_ptr_tokens: int,
        key_valid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Condition frame features on memory tokens (B, M, mem_dim): -> (B, C, h, w).

        ``key_valid`` (B, M) bool: tokens marked False are empty slots of a padded bank, left out."""
        b, ch, h, w = features.embed.shape
        curr = features.embed.flatten(2).transpose(1, 2)
        curr_pos = features.pos.flatten(2).transpose(1, 2)
        out = self.memory_attention(curr, curr_pos, memory, memory_pos, num_ptr_tokens, key_valid)
        return out.transpose(1, 2).reshape(b, ch, h, w)

    def without_memory(self, features: ImageFeatures) -> torch.Tensor:
        """Features of a first prompted frame: the learned no-memory embedding is added (B, C, h, w)."""
        if self.config.directly_add_no_mem_embed:
            return features.embed + self.no_mem_embed.reshape(1, -1, 1, 1)
        memory = self.no_mem_embed.expand(features.embed.shape[0], 1, self.mem_dim)
        pos = self.no_mem_pos_enc.expand(features.embed.shape[0], 1, self.mem_dim)
        return self.attend_memory(features, memory, pos, 0)

    def use_multimask(self, is_init_cond_frame: bool, num_points: int) -> bool:
        c = self.config
        return (
            c.multimask_output_in_sam
            and (is_init_cond_frame or c.multimask_output_for_tracking)
            and c.multimask_min_pt_num <= num_points <= c.multimask_max_pt_num
        )

    def float32_section(self):
        """Inside an autocast region: run a cheap, rounding-sensitive part (the mask decoder) in float32."""
        if torch.is_autocast_enabled(self.device.type):
            return torch.autocast(self.device.type, enabled=False)
        return contextlib.nullcontext()

    def weights_version(self) -> int:
        """Changes whenever a weight is replaced or updated in place (cached results keyed on it)."""
        return tensors_version(self.parameters())

    def compile_parts(self, mode: str | None = None) -> "Sam2Model":
        """Compile the two heavy parts (image encoder, memory attention) with ``torch.compile``.

        Worth it on GPUs for long videos: the first frames pay the compilation (minutes on CPU).
        Memory attention is compiled for varying memory lengths. Returns the model itself.
        """
        self.image_encoder.compile(mode=mode, dynamic=False)
        self.memory_attention.compile(mode=mode, dynamic=True)
        return self

    def forward(self, *args, **kwargs):  # pragma: no cover - guide users to the real entry points
        raise NotImplementedError("wrap the network in sam2_plugins.Sam2 (predict_image, open_video) "
                                  "or train it with sam2_plugins.train")
