"""Image encoder: Hiera trunk + FPN neck. Checkpoint prefix ``image_encoder``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import SinePositionEncoding
from .hiera import Hiera


class FpnNeck(nn.Module):
    """Projects every trunk stage to d_model channels and adds top-down features on chosen levels."""

    def __init__(
        self,
        d_model: int,
        backbone_channel_list: tuple[int, ...],
        fpn_top_down_levels: tuple[int, ...],
        fpn_interp_model: str = "nearest",
    ) -> None:
        super().__init__()
        self.position_encoding = SinePositionEncoding(d_model)
        self.convs = nn.ModuleList()
        for channels in backbone_channel_list:
            level = nn.Sequential()
            level.add_module("conv", nn.Conv2d(channels, d_model, kernel_size=1))
            self.convs.append(level)
        self.backbone_channel_list = list(backbone_channel_list)
        self.top_down_levels = set(fpn_top_down_levels)
        self.interp_mode = fpn_interp_model

    def forward(self, stage_feats: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """stage_feats: highest resolution first. Returns (features, position codes), same order."""
        n = len(self.convs) - 1
        feats: list[torch.Tensor] = [None] * (n + 1)  # type: ignore[list-item]
        pos: list[torch.Tensor] = [None] * (n + 1)  # type: ignore[list-item]
        above = None
        for i in range(n, -1, -1):
            lateral = self.convs[n - i](stage_feats[i])
            if i in self.top_down_levels and above is not None:
                top_down = F.interpolate(
                    above.to(torch.float32), scale_factor=2.0, mode=self.interp_mode,
                    align_corners=None if self.interp_mode == "nearest" else False,
                )
                above = lateral + top_down
            else:
                above = lateral
            feats[i] = above
            pos[i] = self.position_encoding(above).to(above.dtype)
        return feats, pos


class ImageEncoder(nn.Module):
    """Returns the FPN levels (highest resolution first) and their position codes."""

    def __init__(self, trunk: Hiera, neck: FpnNeck, scalp: int = 1) -> None:
        super().__init__()
        if trunk.channel_list != neck.backbone_channel_list:
            raise ValueError(
                f"trunk channels {trunk.channel_list} do not match neck {neck.backbone_channel_list}"
            )
        self.trunk = trunk
        self.neck = neck
        self.scalp = scalp

    def forward(self, pixels: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        feats, pos = self.neck(self.trunk(pixels))
        if self.scalp > 0:  # drop the lowest-resolution levels
            feats, pos = feats[: -self.scalp], pos[: -self.scalp]
        return feats, pos
