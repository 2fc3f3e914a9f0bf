"""Memory attention: conditions the current frame's features on memories of past frames.

Checkpoint prefix ``memory_attention``. Tokens are batch-first, (B, N, C).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import objects_one_at_a_time
from .transformer import RoPEAttention


class MemoryAttentionLayer(nn.Module):
    """Self-attention (RoPE) over the frame, cross-attention (RoPE) to memories, then an MLP."""

    def __init__(self, d_model: int, kv_dim: int, dim_feedforward: int, num_heads: int, rope_theta: float, dropout: float):
        super().__init__()
        self.self_attn = RoPEAttention(d_model, num_heads, dropout=dropout, rope_theta=rope_theta)
        self.cross_attn_image = RoPEAttention(
            d_model, num_heads, dropout=dropout, kv_in_dim=kv_dim, rope_theta=rope_theta
        )
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def attend_self(self, x: torch.Tensor) -> torch.Tensor:
        """Self-attention over the frame's tokens, with its residual."""
        return x + self._self_attention(x)

    def _self_attention(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        return self.dropout1(self.self_attn(h, h, h))

    def attend_memory(self, x: torch.Tensor, memory: torch.Tensor, memory_pos: torch.Tensor,
                      num_ptr_tokens: int, key_valid: torch.Tensor | None = None) -> torch.Tensor:
        """Cross-attention to the memories (those marked True in ``key_valid`` (B, M), if given), then
        the MLP, each with its residual."""
        h = self.norm2(x)
        x = x + self.dropout2(self.cross_attn_image(h, memory + memory_pos, memory, num_k_exclude_rope=num_ptr_tokens,
                                                    key_valid=key_valid))
        h = self.linear2(self.dropout(F.relu(self.linear1(self.norm3(x)), inplace=True)))
        return x + self.dropout3(h)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, memory_pos: torch.Tensor, num_ptr_tokens: int,
                same_rows: bool = False, key_valid: torch.Tensor | None = None) -> torch.Tensor:
        """``same_rows``: every batch row of x is the same frame (objects of one frame, first layer)."""
        x = x + self._self_attention(x[:1] if same_rows else x)  # (1, N, C) broadcasts over the objects
        return self.attend_memory(x, memory, memory_pos, num_ptr_tokens, key_valid)


class MemoryAttention(nn.Module):
    def __init__(self, d_model: int, kv_dim: int, num_layers: int, dim_feedforward: int, num_heads: int,
                 rope_theta: float, dropout: float):
        super().__init__()
        self.layers = nn.ModuleList(
            MemoryAttentionLayer(d_model, kv_dim, dim_feedforward, num_heads, rope_theta, dropout)
            for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(d_model)

    def forward(
        self,
        curr: torch.Tensor,
        curr_pos: torch.Tensor,
        memory: torch.Tensor,
        memory_pos: torch.Tensor,
        num_ptr_tokens: int = 0,
        key_valid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """curr, curr_pos (B, HW, C); memory, memory_pos (B, M, kv_dim) -> (B, HW, C).

        The last ``num_ptr_tokens`` memory tokens are object pointers (no rotary code).
        ``key_valid`` (B, M) bool: memory tokens marked False are empty slots, left out.
        """
        # objects of one frame share its features (an expanded batch): the first self-attention is common
        same_rows = curr.shape[0] > 1 and curr.stride(0) == 0 and curr_pos.stride(0) == 0
        x = curr + 0.1 * curr_pos
        if curr.shape[0] > 1 and objects_one_at_a_time(x.device):
            shared = self.layers[0].attend_self(x[:1]) if same_rows else None
            return self.norm(torch.cat([
                self._one_object(x[i : i + 1], memory[i : i + 1], memory_pos[i : i + 1], num_ptr_tokens, shared,
                                 None if key_valid is None else key_valid[i : i + 1])
                for i in range(curr.shape[0])
            ]))
        for i, layer in enumerate(self.layers):
            x = layer(x, memory, memory_pos, num_ptr_tokens, same_rows=same_rows and i == 0, key_valid=key_valid)
        return self.norm(x)

    def _one_object(self, x: torch.Tensor, memory: torch.Tensor, memory_pos: torch.Tensor, num_ptr_tokens: int,
                    after_first_self_attention: torch.Tensor | None,
                    key_valid: torch.Tensor | None = None) -> torch.Tensor:
        """One object (batch of 1) through all layers; the first self-attention may come precomputed."""
        first = self.layers[0]
        h = first.attend_self(x) if after_first_self_attention is None else after_first_self_attention
        h = first.attend_memory(h, memory, memory_pos, num_ptr_tokens, key_valid)
        for layer in self.layers[1:]:
            h = layer(h, memory, memory_pos, num_ptr_tokens, key_valid=key_valid)
        return h
