"""Attention layers: plain multi-head attention, RoPE attention, and the decoder's two-way transformer."""

from __future__ import annotations

import math

import torch
from torch import nn

from .common import MLP, apply_rope, attention, axial_rope_angles, mix_narrow_values_first


class Attention(nn.Module):
    """Multi-head attention with separate q/k/v projections and optional inner downsampling."""

    def __init__(
        self,
        embedding_dim: int,
        num_heads: int,
        downsample_rate: int = 1,
        dropout: float = 0.0,
        kv_in_dim: int | None = None,
    ) -> None:
        super().__init__()
        kv_in_dim = kv_in_dim or embedding_dim
        self.internal_dim = embedding_dim // downsample_rate
        if self.internal_dim % num_heads:
            raise ValueError("num_heads must divide the attention's internal dimension")
        self.num_heads = num_heads
        self.dropout_p = dropout
        self.q_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.k_proj = nn.Linear(kv_in_dim, self.internal_dim)
        self.v_proj = nn.Linear(kv_in_dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, embedding_dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, C) -> (B, heads, N, C/heads)
        b, n, c = x.shape
        return x.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                key_valid: torch.Tensor | None = None) -> torch.Tensor:
        dropout = self.dropout_p if self.training else 0.0
        out = attention(q, k, v, dropout_p=dropout, key_valid=key_valid)
        b, h, n, c = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, n, h * c))

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self._attend(self._heads(self.q_proj(q)), self._heads(self.k_proj(k)), self._heads(self.v_proj(v)))


class RoPEAttention(Attention):
    """Attention with 2-D axial rotary position codes on a square token grid.

    Keys may hold several frames' grids (rotations repeat per frame) followed by
    ``num_k_exclude_rope`` tokens (object pointers) that get no rotation. ``key_valid`` (B, M) bool
    leaves out the keys marked False (empty slots of a padded memory bank).
    """

    def __init__(self, *args, rope_theta: float = 10000.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.rope_theta = rope_theta
        self._rotations: dict[tuple[int, str, bool], torch.Tensor] = {}

    def rotations(self, num_tokens: int, device: torch.device) -> torch.Tensor:
        # one table with autograd on, one without: a table made under inference_mode cannot enter
        # autograd (training after tracking); a key, unlike a check of the table, compiles without a break
        key = (num_tokens, str(device), torch.is_grad_enabled())
        if key not in self._rotations:
            side = int(math.isqrt(num_tokens))
            if side * side != num_tokens:
                raise ValueError(f"RoPE attention needs a square token grid, got {num_tokens} tokens")
            head_dim = self.internal_dim // self.num_heads
            self._rotations[key] = axial_rope_angles(head_dim, side, side, self.rope_theta).to(device)
        return self._rotations[key]

    def forward(  # type: ignore[override]
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, num_k_exclude_rope: int = 0,
        key_valid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        q, k = self._heads(self.q_proj(q)), self._heads(self.k_proj(k))
        rot = self.rotations(q.shape[-2], q.device)
        q = apply_rope(q, rot)
        n_rope = k.shape[-2] - num_k_exclude_rope
        if num_k_exclude_rope and not torch.is_grad_enabled():
            k[:, :, :n_rope] = apply_rope(k[:, :, :n_rope], rot)  # in place: saves a copy of all keys
        elif num_k_exclude_rope:
            k = torch.cat([apply_rope(k[:, :, :n_rope], rot), k[:, :, n_rope:]], dim=2)
        else:
            k = apply_rope(k, rot)
        if self._values_after_mixing(q, v):
            return self._attend_unprojected_values(q, k, v, key_valid)
        return self._attend(q, k, self._heads(self.v_proj(v)), key_valid)

    def _values_after_mixing(self, q: torch.Tensor, v: torch.Tensor) -> bool:
        """Whether to project values after the attention mix: cheaper when the inputs are narrower,
        on the explicit-matmul path (fused kernels are slower with a value width unlike the keys').
        In bfloat16 with AMX the fused kernel on projected values wins: memory attention of tiny at
        1024 took 0.44-0.48 s against 0.49-0.51 s mixed first."""
        dropout = self.dropout_p if self.training else 0.0
        return v.shape[-1] < self.internal_dim // self.num_heads and mix_narrow_values_first(q, dropout)

    def _attend_unprojected_values(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                   key_valid: torch.Tensor | None = None) -> torch.Tensor:
        """Attention with the value projection moved after the mix.

        Softmax rows sum to one, so P (V W^T + b) = (P V) W^T + b: mixing the kv_in_dim-wide
        inputs (64 for memories) instead of the projected ones (256) cuts that matmul 4x.
        """
        b, m, c_in = v.shape
        heads = self.num_heads
        mixed = attention(q, k, v[:, None].expand(b, heads, m, c_in), key_valid=key_valid)  # (B, heads, N, c_in)
        weight = self.v_proj.weight.view(heads, -1, c_in)  # (heads, head_dim, c_in)
        # the projection is cheap (N x c_in x head_dim): keep it in float32 against rounding
        with torch.autocast(mixed.device.type, enabled=False):
            values = torch.matmul(mixed.float(), weight.transpose(1, 2).float())  # (B, heads, N, head_dim)
            values = (values + self.v_proj.bias.view(heads, 1, -1).float()).to(mixed.dtype)
        n = values.shape[2]
        return self.out_proj(values.transpose(1, 2).reshape(b, n, self.internal_dim))


class TwoWayAttentionBlock(nn.Module):
    """Tokens attend to themselves and to the image; the image attends back to the tokens."""

    def __init__(self, dim: int, num_heads: int, mlp_dim: int, downsample_rate: int, skip_first_layer_pe: bool):
        super().__init__()
        self.self_attn = Attention(dim, num_heads)
        self.norm1 = nn.LayerNorm(dim)
        self.cross_attn_token_to_image = Attention(dim, num_heads, downsample_rate=downsample_rate)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_dim, dim, num_layers=2, activation=nn.ReLU)
        self.norm3 = nn.LayerNorm(dim)
        self.norm4 = nn.LayerNorm(dim)
        self.cross_attn_image_to_token = Attention(dim, num_heads, downsample_rate=downsample_rate)
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(
        self, queries: torch.Tensor, keys: torch.Tensor, query_pe: torch.Tensor, key_pe: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.skip_first_layer_pe:
            queries = self.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        queries = self.norm1(queries)
        q, k = queries + query_pe, keys + key_pe
        queries = self.norm2(queries + self.cross_attn_token_to_image(q, k, keys))
        queries = self.norm3(queries + self.mlp(queries))
        q, k = queries + query_pe, keys + key_pe
        keys = self.norm4(keys + self.cross_attn_image_to_token(k, q, queries))
        return queries, keys


class TwoWayTransformer(nn.Module):
    """The mask decoder's transformer between prompt tokens and image tokens."""

    def __init__(self, depth: int, embedding_dim: int, num_heads: int, mlp_dim: int, downsample_rate: int = 2):
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(embedding_dim, num_heads, mlp_dim, downsample_rate, skip_first_layer_pe=(i == 0))
            for i in range(depth)
        )
        self.final_attn_token_to_image = Attention(embedding_dim, num_heads, downsample_rate=downsample_rate)
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    def forward(
        self, image: torch.Tensor, image_pe: torch.Tensor, tokens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """image, image_pe (B, C, h, w); tokens (B, N, C) -> (tokens (B, N, C), image tokens (B, hw, C))."""
        keys = image.flatten(2).permute(0, 2, 1)
        key_pe = image_pe.flatten(2).permute(0, 2, 1)
        queries = tokens
        for layer in self.layers:
            queries, keys = layer(queries, keys, tokens, key_pe)
        q, k = queries + tokens, keys + key_pe
        queries = self.norm_final_attn(queries + self.final_attn_token_to_image(q, k, keys))
        return queries, keys
