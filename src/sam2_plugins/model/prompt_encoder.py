"""Prompt encoder: points, box corners and mask prompts to embeddings. Prefix ``sam_prompt_encoder``."""

from __future__ import annotations

import math

import torch
from torch import nn

from .common import LayerNorm2d

# Point labels understood by the prompt encoder.
NOT_A_POINT, NEGATIVE, POSITIVE, BOX_TOP_LEFT, BOX_BOTTOM_RIGHT = -1, 0, 1, 2, 3


class RandomFourierPositions(nn.Module):
    """Position code from random spatial frequencies (the buffer name matches the checkpoint)."""

    def __init__(self, num_pos_feats: int) -> None:
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", torch.randn(2, num_pos_feats))

    def encode(self, coords: torch.Tensor) -> torch.Tensor:
        """coords (..., 2) normalised to [0, 1] -> (..., 2 * num_pos_feats)."""
        coords = (2 * coords - 1) @ self.positional_encoding_gaussian_matrix
        coords = 2 * math.pi * coords
        return torch.cat([coords.sin(), coords.cos()], dim=-1)

    def grid(self, h: int, w: int) -> torch.Tensor:
        """Code of every cell centre of an h x w grid: (C, h, w)."""
        device = self.positional_encoding_gaussian_matrix.device
        ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h
        xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w
        xy = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # (h, w, 2)
        return self.encode(xy).permute(2, 0, 1)


class PromptEncoder(nn.Module):
    """Sparse (points) and dense (mask) prompt embeddings for the mask decoder."""

    def __init__(self, embed_dim: int, image_embedding_size: int, input_image_size: int, mask_in_chans: int = 16):
        super().__init__()
        self.embed_dim = embed_dim
        self.image_embedding_size = (image_embedding_size, image_embedding_size)
        self.input_image_size = input_image_size
        self.pe_layer = RandomFourierPositions(embed_dim // 2)
        # one embedding each for: negative, positive, box top-left, box bottom-right
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_input_size = (4 * image_embedding_size, 4 * image_embedding_size)
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            nn.GELU(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            nn.GELU(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)
        self._dense_pe: torch.Tensor | None = None

    def dense_pe(self) -> torch.Tensor:
        """Position code of the image embedding grid: (1, C, h, w)."""
        pe = self._dense_pe
        device = self.pe_layer.positional_encoding_gaussian_matrix.device
        if pe is None or pe.device != device or self.training:
            pe = self.pe_layer.grid(*self.image_embedding_size)[None]
            if not self.training:
                self._dense_pe = pe
        return pe

    def embed_points(self, coords: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """coords (B, N, 2) in model-input pixels, labels (B, N) -> (B, N + 1, C).

        A padding "not a point" is appended, as SAM 2 always does when no box tensor is passed.
        """
        b = coords.shape[0]
        coords = torch.cat([coords + 0.5, coords.new_zeros(b, 1, 2)], dim=1)  # pixel centres
        labels = torch.cat([labels, labels.new_full((b, 1), NOT_A_POINT)], dim=1)
        emb = self.pe_layer.encode(coords / self.input_image_size)
        labels = labels[..., None]
        emb = torch.where(labels == NOT_A_POINT, self.not_a_point_embed.weight.expand_as(emb), emb)
        for value in (NEGATIVE, POSITIVE, BOX_TOP_LEFT, BOX_BOTTOM_RIGHT):
            emb = torch.where(labels == value, emb + self.point_embeddings[value].weight, emb)
        return emb

    def embed_mask(self, mask_logits: torch.Tensor | None, batch: int) -> torch.Tensor:
        """Dense embedding (B, C, h, w) of mask prompts (B, 1, 4h, 4w), or the no-mask embedding."""
        if mask_logits is not None:
            return self.mask_downscaling(mask_logits)
        h, w = self.image_embedding_size
        return self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(batch, -1, h, w)
