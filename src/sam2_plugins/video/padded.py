"""The fixed-shape memory bank ("padded path"): every object of a frame reads memories of one size.

Why: the default path stacks exactly the memories each object reads, so during the first frames
of a propagation the bank grows (one more frame memory, one more pointer every frame) and objects
whose memories come from different frames run as separate batches. GPU kernels that plan per
shape, CUDA graphs and ``torch.compile(mode="reduce-overhead")`` need shapes that do not change.

Here each object's bank has ``spatial_slots`` frame memories and ``pointer_slots`` object
pointers from the first tracked frame on. Empty slots hold zeros and a key mask leaves them out of
the memory cross-attention (their softmax weight is exactly zero), so the result is the default
path's up to float rounding. The temporal codes are per object and per slot, gathered on the
device from small index tensors, so objects of different layouts run as one batch. Those indices
travel to the device in one (pinned, non-blocking) copy; nothing comes back to the host.

Capacity: ``num_maskmem`` spatial slots and the pointer window (``min(video length,
max_obj_ptrs_in_encoder)``): enough for one conditioning frame per object. More conditioning
frames than fit (several prompted frames, ``max_cond_frames_in_attn`` -1) grow it; it never
shrinks, so each growth is one new shape, once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch

from ..model.common import sine_1d

if TYPE_CHECKING:
    from ..model.sam2 import Sam2Model, SamOutput
    from .tracker import MemoryLayout


@dataclass
class PaddedMemory:
    """Memory tokens of B objects, padded to the bank's capacity."""

    tokens: torch.Tensor  # (B, S*hw + P*k, mem_dim): S frame memories of hw tokens, then P pointers of k tokens
    pos: torch.Tensor  # (B, S*hw + P*k, mem_dim) their position and temporal codes
    key_valid: torch.Tensor  # (B, S*hw + P*k) bool: False on empty slots
    num_ptr_tokens: int  # P*k, the pointer tokens at the end (no rotary code)


class PaddedMemoryBank:
    """Builds fixed-shape memory tokens for a batch of objects of any layouts (see module docs)."""

    def __init__(self, model: Sam2Model) -> None:
        self.model = model
        self.spatial_slots = 0
        self.pointer_slots = 0

    def grow_to(self, layouts: list[MemoryLayout]) -> None:
        """Make room for these layouts (the capacity only grows)."""
        cfg = self.model.config
        pointer_window = layouts[0].max_ptrs if cfg.use_obj_ptrs_in_encoder else 0
        self.spatial_slots = max(self.spatial_slots, cfg.num_maskmem, *(len(lay.spatial) for lay in layouts))
        self.pointer_slots = max(self.pointer_slots, pointer_window, *(len(lay.pointers) for lay in layouts))

    def memory(self, layouts: list[MemoryLayout], memory_pos: torch.Tensor) -> PaddedMemory:
        """The padded bank of each layout's object; ``memory_pos`` (1, mem_dim, h, w) is the memories'
        position code."""
        self.grow_to(layouts)
        device = self.model.device
        num_slots, num_ptrs = self.spatial_slots, self.pointer_slots
        index = self._slot_codes(layouts).to(device, non_blocking=True)  # (B, 2S + 2P + 1)
        tpos_index, slot_valid = index[:, :num_slots].long(), index[:, num_slots : 2 * num_slots].bool()
        ptr_dist = index[:, 2 * num_slots : 2 * num_slots + num_ptrs]
        ptr_valid = index[:, 2 * num_slots + num_ptrs : 2 * num_slots + 2 * num_ptrs].bool()
        ptr_scale = index[:, -1:]  # (B, 1): the pointer window less one, which scales the distances

        tokens, pos = self._spatial_tokens(layouts, memory_pos, tpos_index)
        hw = memory_pos.shape[-2] * memory_pos.shape[-1]
        valid = [slot_valid.repeat_interleave(hw, dim=1)]  # (B, S*hw)
        num_ptr_tokens = 0
        if num_ptrs:
            ptr_tokens, ptr_pos, split = self._pointer_tokens(layouts, ptr_dist / ptr_scale)
            tokens, pos = torch.cat([tokens, ptr_tokens], 1), torch.cat([pos, ptr_pos], 1)
            valid.append(ptr_valid.repeat_interleave(split, dim=1))  # (B, P*k)
            num_ptr_tokens = ptr_tokens.shape[1]
        return PaddedMemory(tokens, pos, torch.cat(valid, 1), num_ptr_tokens)

    def _slot_codes(self, layouts: list[MemoryLayout]) -> torch.Tensor:
        """(B, 2S + 2P + 1) float32 on the host: per spatial slot the index of its temporal code and
        whether it is filled, per pointer slot its signed frame distance and whether it is filled,
        then the pointer scale (one array, so one copy to the device)."""
        num_maskmem = self.model.config.num_maskmem
        rows = []
        for lay in layouts:
            spatial = [num_maskmem - t_pos - 1 for t_pos, _, _ in lay.spatial]
            dists = [d for d, _ in lay.pointers]
            free_s, free_p = self.spatial_slots - len(spatial), self.pointer_slots - len(dists)
            rows.append(spatial + [0] * free_s + [1] * len(spatial) + [0] * free_s
                        + dists + [0] * free_p + [1] * len(dists) + [0] * free_p + [max(lay.max_ptrs - 1, 1)])
        codes = torch.tensor(rows, dtype=torch.float32)
        return codes.pin_memory() if self.model.device.type == "cuda" else codes

    def _spatial_tokens(self, layouts, memory_pos: torch.Tensor, tpos_index: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, S*hw, mem_dim) tokens of the frame memories (zeros in empty slots) and their codes."""
        model, device = self.model, self.model.device
        empty = torch.zeros(1, *memory_pos.shape[1:], device=device)  # (1, mem_dim, h, w)
        feats = torch.cat([
            slot.to(device)
            for lay in layouts
            for slot in [out.maskmem_features for _, _, out in lay.spatial] + [empty] * (self.spatial_slots - len(lay.spatial))
        ]).float()  # (B*S, mem_dim, h, w)
        b, s = len(layouts), self.spatial_slots
        mem_dim = feats.shape[1]
        tokens = feats.reshape(b, s, mem_dim, -1).transpose(2, 3).reshape(b, -1, mem_dim)  # (B, S*hw, mem_dim)
        tpos = model.maskmem_tpos_enc.reshape(-1, mem_dim)[tpos_index]  # (B, S, mem_dim)
        grid = memory_pos.flatten(2).transpose(1, 2)  # (1, hw, mem_dim)
        pos = (grid[:, None] + tpos[:, :, None, :]).reshape(b, -1, mem_dim)  # (B, S, hw, mem_dim) -> (B, S*hw, mem_dim)
        return tokens, pos

    def _pointer_tokens(self, layouts, scaled_dist: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
        """(B, P*k, mem_dim) pointer tokens (each pointer split in k = hidden/mem_dim tokens), their
        codes, and k. ``scaled_dist`` (B, P): frame distances over the pointer window."""
        model, device = self.model, self.model.device
        cfg = model.config
        hidden, mem_dim = model.hidden_dim, model.mem_dim
        empty = torch.zeros(1, hidden, device=device)
        ptrs = torch.cat([
            p.to(device)
            for lay in layouts
            for p in [ptr.obj_ptr for _, ptr in lay.pointers] + [empty] * (self.pointer_slots - len(lay.pointers))
        ]).float()  # (B*P, hidden)
        b, p = scaled_dist.shape
        if cfg.add_tpos_enc_to_obj_ptrs:
            dim = hidden if cfg.proj_tpos_enc_in_obj_ptrs else mem_dim
            pos = model.obj_ptr_tpos_proj(sine_1d(scaled_dist.reshape(-1), dim)).reshape(b, p, mem_dim)
        else:
            pos = ptrs.new_zeros(b, p, mem_dim)
        split = hidden // mem_dim if mem_dim < hidden else 1
        tokens = ptrs.reshape(b, p * split, mem_dim)  # (B, P, k, mem_dim) flattened: a pointer's k tokens in a row
        return tokens, pos.repeat_interleave(split, dim=1), split


def kept_outputs(sam: SamOutput, memory: torch.Tensor | None) -> tuple[SamOutput, torch.Tensor | None]:
    """A batch's outputs that the tracker stores (mask logits, pointers, scores, memories) as tensors of
    their own: a compiled part's CUDA graph overwrites its outputs on its next replay. One copy per
    batch, not per object."""
    kept = replace(sam, low_res_masks=sam.low_res_masks.clone(), obj_ptr=sam.obj_ptr.clone(),
                   object_score_logits=sam.object_score_logits.clone())
    return kept, None if memory is None else memory.clone()


# Devices where the padded path is the default. Empty until a GPU run of benchmarks/gpu_run.sh shows
# it faster there (fixed shapes let CUDA graphs and compilers reuse their work, but a key mask rules
# out flash attention); on CPU exact-size banks are as fast or faster.
PADDED_BY_DEFAULT: frozenset[str] = frozenset()


def uses_fixed_shapes(setting: bool | None, device: torch.device) -> bool:
    """Whether the padded path runs: ``setting`` True/False forces it; None chooses per device
    (:data:`PADDED_BY_DEFAULT`)."""
    return device.type in PADDED_BY_DEFAULT if setting is None else bool(setting)


def compile_fixed_step(model: Sam2Model, mode: str = "reduce-overhead") -> Sam2Model:
    """Compile the parts of a padded track step for fixed shapes (``dynamic=False``): memory
    attention, the mask decoder and the memory encoder with ``mode`` (default: CUDA graphs), the image
    encoder without CUDA graphs (the session caches its outputs across frames, and a graph's outputs
    are overwritten by its next replay). The tracker copies what it keeps of the other parts' outputs
    on the padded path. Returns the model."""
    model.image_encoder.compile(dynamic=False)
    for part in (model.memory_attention, model.sam_mask_decoder, model.memory_encoder):
        part.compile(mode=mode, dynamic=False)
    return model
