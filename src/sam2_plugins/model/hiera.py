"""Hiera: the hierarchical vision transformer trunk of SAM 2's image encoder.

Checkpoint prefix: ``image_encoder.trunk``. Tokens are kept channels-last, (B, H, W, C).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import MLP, attention, tensors_version


def pool_tokens(x: torch.Tensor, pool: nn.Module | None) -> torch.Tensor:
    """Apply a 2-D pooling to a channels-last map (B, H, W, C)."""
    if pool is None:
        return x
    return pool(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


def to_windows(x: torch.Tensor, size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """(B, H, W, C) -> (B * nWin, size, size, C), zero-padding H, W up to multiples of size."""
    b, h, w, c = x.shape
    pad_h, pad_w = (size - h % size) % size, (size - w % size) % size
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = h + pad_h, w + pad_w
    x = x.view(b, hp // size, size, wp // size, size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, size, size, c), (hp, wp)


def from_windows(
    windows: torch.Tensor, size: int, padded_hw: tuple[int, int], hw: tuple[int, int]
) -> torch.Tensor:
    """Inverse of :func:`to_windows`: (B * nWin, size, size, C) -> (B, H, W, C)."""
    hp, wp = padded_hw
    b = windows.shape[0] // ((hp // size) * (wp // size))
    x = windows.reshape(b, hp // size, wp // size, size, size, -1)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, -1)
    return x[:, : hw[0], : hw[1], :]


class PatchEmbed(nn.Module):
    """7x7 stride-4 convolution from pixels to tokens."""

    def __init__(self, embed_dim: int, in_chans: int = 3) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=7, stride=4, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x).permute(0, 2, 3, 1)  # (B, H/4, W/4, C)
        # inference: tokens laid out channels-last (as the engine's channels-last frames give them), so
        # the first stage's norms, adds and windows read them in order: from NCHW pixels the trunk took
        # 0.41 s against 0.37 s (tiny at 1024, AMX). Training keeps its recipe's layout
        return x if torch.is_grad_enabled() else x.contiguous()


class MultiScaleAttention(nn.Module):
    """Self-attention whose queries may be max-pooled (halving the token grid)."""

    def __init__(self, dim: int, dim_out: int, num_heads: int, q_pool: nn.Module | None) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q_pool = q_pool
        self.qkv = nn.Linear(dim, dim_out * 3)
        self.proj = nn.Linear(dim_out, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        qkv = self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1)
        q, k, v = qkv.unbind(2)  # each (B, HW, heads, head_dim)
        if self.q_pool is not None:
            q = pool_tokens(q.reshape(b, h, w, -1), self.q_pool)
            h, w = q.shape[1:3]
            q = q.reshape(b, h * w, self.num_heads, -1)
        out = attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        out = out.transpose(1, 2).reshape(b, h, w, -1)
        return self.proj(out)


class MultiScaleBlock(nn.Module):
    """Pre-norm transformer block with optional windowing, query pooling and channel growth."""

    def __init__(
        self, dim: int, dim_out: int, num_heads: int, q_stride: tuple[int, int] | None, window_size: int
    ) -> None:
        super().__init__()
        self.dim, self.dim_out = dim, dim_out
        self.window_size = window_size
        self.q_stride = q_stride
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.pool = nn.MaxPool2d(kernel_size=q_stride, stride=q_stride) if q_stride else None
        self.attn = MultiScaleAttention(dim, dim_out, num_heads, q_pool=self.pool)
        self.norm2 = nn.LayerNorm(dim_out, eps=1e-6)
        self.mlp = MLP(dim_out, int(dim_out * 4.0), dim_out, num_layers=2, activation=nn.GELU)
        if dim != dim_out:
            self.proj = nn.Linear(dim, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x  # (B, H, W, C)
        x = self.norm1(x)
        if self.dim != self.dim_out:
            shortcut = pool_tokens(self.proj(x), self.pool)
        window = self.window_size
        h, w = x.shape[1:3]
        if window > 0:
            x, padded_hw = to_windows(x, window)
        x = self.attn(x)
        if window > 0:
            if self.q_stride:
                # Queries were pooled: the windows shrank by the stride.
                window = window // self.q_stride[0]
                h, w = shortcut.shape[1:3]
                padded_hw = (h + (window - h % window) % window, w + (window - w % window) % window)
            x = from_windows(x, window, padded_hw, (h, w))
        x = shortcut + x
        return x + self.mlp(self.norm2(x))


class Hiera(nn.Module):
    """The trunk: returns one feature map per stage, highest resolution first (B, C_i, H_i, W_i)."""

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        stages: tuple[int, ...],
        global_att_blocks: tuple[int, ...],
        window_pos_embed_bkg_spatial_size: tuple[int, int],
        window_spec: tuple[int, ...],
        q_pool: int = 3,
        q_stride: tuple[int, int] = (2, 2),
        dim_mul: float = 2.0,
        head_mul: float = 2.0,
    ) -> None:
        super().__init__()
        if len(stages) != len(window_spec):
            raise ValueError("stages and window_spec must have the same length")
        self.stage_ends = [sum(stages[: i + 1]) - 1 for i in range(len(stages))]
        q_pool_blocks = [end + 1 for end in self.stage_ends[:-1]][:q_pool]
        self.patch_embed = PatchEmbed(embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, embed_dim, *window_pos_embed_bkg_spatial_size))
        self.pos_embed_window = nn.Parameter(torch.zeros(1, embed_dim, window_spec[0], window_spec[0]))
        self.blocks = nn.ModuleList()
        stage = 0
        dim = embed_dim
        for i in range(sum(stages)):
            dim_out = dim
            # The first block of a stage still uses the previous stage's window size.
            window = 0 if i in global_att_blocks else window_spec[stage]
            if i - 1 in self.stage_ends:
                dim_out = int(dim * dim_mul)
                num_heads = int(num_heads * head_mul)
                stage += 1
            self.blocks.append(
                MultiScaleBlock(
                    dim, dim_out, num_heads,
                    q_stride=tuple(q_stride) if i in q_pool_blocks else None,
                    window_size=window,
                )
            )
            dim = dim_out
        self.channel_list = [self.blocks[i].dim_out for i in self.stage_ends[::-1]]

    def _pos_embed(self, h: int, w: int) -> torch.Tensor:
        """(1, H, W, C) position code; kept between frames while the weights do not change."""
        if torch.compiler.is_compiling():
            return self._interpolated_pos_embed(h, w)
        key = (h, w, tensors_version((self.pos_embed, self.pos_embed_window)))
        cached = getattr(self, "_pos_cache", None)
        if cached is not None and cached[0] == key and not torch.is_grad_enabled():
            return cached[1]
        pos = self._interpolated_pos_embed(h, w)
        if not torch.is_grad_enabled():
            pos = pos.contiguous()  # laid out as the tokens (see PatchEmbed)
            self._pos_cache = (key, pos)
        return pos

    def _interpolated_pos_embed(self, h: int, w: int) -> torch.Tensor:
        pos = F.interpolate(self.pos_embed, size=(h, w), mode="bicubic")
        reps = [a // b for a, b in zip(pos.shape, self.pos_embed_window.shape)]
        return (pos + self.pos_embed_window.tile(reps)).permute(0, 2, 3, 1)  # (1, H, W, C)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.patch_embed(x)
        x = x + self._pos_embed(*x.shape[1:3])
        outputs = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.stage_ends:
                outputs.append(x.permute(0, 3, 1, 2))
        return outputs
