"""Memory encoder: fuses a frame's features with its predicted mask into a memory. Prefix ``memory_encoder``."""

from __future__ import annotations

import math

import torch
from torch import nn

from .common import LayerNorm2d, SinePositionEncoding


class MaskDownSampler(nn.Module):
    """Strided convolutions that bring a mask from image resolution down to the feature grid (x16)."""

    def __init__(self, embed_dim: int, kernel_size: int, stride: int, padding: int, total_stride: int = 16):
        super().__init__()
        num_layers = int(math.log2(total_stride) // math.log2(stride))
        self.encoder = nn.Sequential()
        chans_in = 1
        for _ in range(num_layers):
            chans_out = chans_in * stride**2
            self.encoder.append(nn.Conv2d(chans_in, chans_out, kernel_size, stride=stride, padding=padding))
            self.encoder.append(LayerNorm2d(chans_out))
            self.encoder.append(nn.GELU())
            chans_in = chans_out
        self.encoder.append(nn.Conv2d(chans_in, embed_dim, kernel_size=1))

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(mask)


class CXBlock(nn.Module):
    """ConvNeXt block: depthwise conv, channel norm, pointwise MLP, layer scale, residual."""

    def __init__(self, dim: int, kernel_size: int = 7, padding: int = 3, layer_scale_init_value: float = 1e-6):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=kernel_size, padding=padding, groups=dim)
        self.norm = LayerNorm2d(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(layer_scale_init_value * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.dwconv(x)).permute(0, 2, 3, 1)  # (B, H, W, C)
        h = self.gamma * self.pwconv2(self.act(self.pwconv1(h)))
        return x + h.permute(0, 3, 1, 2)


class Fuser(nn.Module):
    def __init__(self, dim: int, num_layers: int, kernel_size: int, padding: int):
        super().__init__()
        self.layers = nn.ModuleList(CXBlock(dim, kernel_size, padding) for _ in range(num_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class MemoryEncoder(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, kernel: int, stride: int, padding: int,
                 fuser_layers: int, fuser_kernel: int, fuser_padding: int):
        super().__init__()
        self.mask_downsampler = MaskDownSampler(in_dim, kernel, stride, padding)
        self.pix_feat_proj = nn.Conv2d(in_dim, in_dim, kernel_size=1)
        self.fuser = Fuser(in_dim, fuser_layers, fuser_kernel, fuser_padding)
        self.position_encoding = SinePositionEncoding(out_dim)
        self.out_proj = nn.Conv2d(in_dim, out_dim, kernel_size=1) if out_dim != in_dim else nn.Identity()

    def forward(self, pix_feat: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """pix_feat (B, C, h, w), mask (B, 1, 16h, 16w) already scaled -> (memory (B, M, h, w), pos)."""
        shared = pix_feat.shape[0] > 1 and pix_feat.stride(0) == 0  # objects of one frame: project once
        x = self.pix_feat_proj(pix_feat[:1] if shared else pix_feat) + self.mask_downsampler(mask)
        x = self.out_proj(self.fuser(x))
        return x, self.position_encoding(x).to(x.dtype)
