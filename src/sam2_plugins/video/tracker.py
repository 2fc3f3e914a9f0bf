"""SAM 2's per-frame inference for a batch of objects of one video.

The rules are those of Meta's ``SAM2VideoPredictor`` with ``add_all_frames_to_correct_as_cond``:
a prompt on any frame makes it a conditioning frame of that object. Objects that share the
same memory layout on a frame run memory attention, the decoder and the memory encoder as
one batch. With ``non_overlap_memory`` (SAM 2's ``non_overlap_masks_for_mem_enc``), each pixel
belongs to at most one object in what the memory encoder sees: where another object of the
same frame scores higher, an object's logits are clamped below zero before its memory is made.

On the padded path (:mod:`.padded`; ``Tracker.fixed_shapes``, off by default until a GPU measures it) every
object of a frame reads a memory bank of one fixed size, and all objects, whatever their
layouts, run memory attention as one batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..lru import ByteLRU
from ..model.common import objects_one_at_a_time, resize_bilinear
from ..model.sam2 import ImageFeatures, Sam2Model, SamOutput
from .memory_select import pick_memories
from .padded import PaddedMemoryBank, kept_outputs, uses_fixed_shapes
from .stores import FrameOutput, PointerRecord, SpillPool, tensor_bytes
from .track import ObjectTrack, PointPrompt


@dataclass
class MemoryLayout:
    """Which stored outputs condition one object on one frame."""

    spatial: list[tuple[int, int, FrameOutput]]  # (t_pos, frame, output)
    pointers: list[tuple[int, FrameOutput | PointerRecord]]  # (temporal distance, output or its pointer)
    max_ptrs: int  # the pointer window (scales the pointers' temporal code)

    def key(self) -> tuple:
        return tuple((t, f) for t, f, _ in self.spatial), tuple(d for d, _ in self.pointers)


class Tracker:
    """Runs SAM 2 frame steps for batches of objects of one video.

    ``fixed_shapes``: True forces the padded path (fixed tensor shapes, one batch for every
    object of a frame), False the default one (exact-size memories, one batch per layout); None
    (the default) takes it on the device types in ``padded.PADDED_BY_DEFAULT``.
    """

    fixed_shapes: bool | None = None

    def __init__(self, model: Sam2Model, features: Callable[[int], ImageFeatures], num_frames: Callable[[], int],
                 pool: SpillPool) -> None:
        self.model = model
        self.cfg = model.config
        self.features = features
        self.num_frames = num_frames
        self.pool = pool
        self._maskmem_pos: torch.Tensor | None = None
        self.conditioned = ConditionedCache(max_bytes=64 << 20)
        self.non_overlap_memory = bool(self.cfg.non_overlap_masks_for_mem_enc)
        self.padded_bank = PaddedMemoryBank(model)

    @property
    def padded(self) -> bool:
        """Whether steps take the padded path (see ``fixed_shapes``)."""
        return uses_fixed_shapes(self.fixed_shapes, self.model.device)

    def new_track(self, obj_id: int, first_frame: int | None = None) -> ObjectTrack:
        return ObjectTrack(obj_id, self.pool.new_dict(), first_frame=first_frame)

    # ------------------------------------------------------------ memory selection
    def memory_layout(self, track: ObjectTrack, frame: int, reverse: bool) -> MemoryLayout:
        """The stored outputs that condition ``track`` on ``frame`` (SAM 2's rule: :func:`pick_memories`)."""
        pick = pick_memories(self.cfg, frame, list(track.cond), track.non_cond, self.num_frames(), reverse=reverse)
        spatial = [(t_pos, f, track.cond[f] if is_cond else track.non_cond[f]) for t_pos, f, is_cond in pick.spatial]
        pointers = [(d, track.cond[f] if is_cond else track.non_cond.pointer(f)) for d, f, is_cond in pick.pointers]
        return MemoryLayout(spatial, pointers, pick.max_ptrs)

    def _memory_pos(self) -> torch.Tensor:
        """(1, mem_dim, h, w) position code of every memory, in the dtype the memory encoder computes in."""
        if self._maskmem_pos is None:
            model, device = self.model, self.model.device
            autocast = torch.is_autocast_enabled(device.type)
            dtype = torch.get_autocast_dtype(device.type) if autocast else torch.float32
            side = model.image_size // 16
            probe = torch.zeros(1, 1, side, side, device=device, dtype=dtype)
            self._maskmem_pos = model.memory_encoder.position_encoding(probe).float().clone()
        return self._maskmem_pos

    def _memory_tokens(self, layouts: list[MemoryLayout]) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Stack the memories of B objects sharing one layout: (B, M, mem_dim) tokens and codes."""
        model = self.model
        device = model.device
        tokens, codes = [], []
        pos = self._memory_pos()
        for i, (t_pos, _, _) in enumerate(layouts[0].spatial):
            feats = torch.cat([lay.spatial[i][2].maskmem_features for lay in layouts]).to(device)
            tok, code = model.memory_tokens(feats.float(), pos.expand(len(layouts), -1, -1, -1), t_pos)
            tokens.append(tok)
            codes.append(code)
        num_ptr_tokens = 0
        if layouts[0].pointers:
            ptrs = torch.stack([torch.cat([lay.pointers[j][1].obj_ptr for lay in layouts]).to(device)
                                for j in range(len(layouts[0].pointers))])  # (P, B, C)
            tok, code = model.pointer_tokens(ptrs, [d for d, _ in layouts[0].pointers], layouts[0].max_ptrs)
            tokens.append(tok)
            codes.append(code)
            num_ptr_tokens = tok.shape[1]
        return torch.cat(tokens, dim=1), torch.cat(codes, dim=1), num_ptr_tokens

    # ------------------------------------------------------------ one frame
    def step(
        self,
        tracks: list[ObjectTrack],
        frame: int,
        *,
        is_init_cond_frame: bool,
        reverse: bool,
        run_mem_encoder: bool,
        points: PointPrompt | None = None,
        mask: torch.Tensor | None = None,
        prev_logits: torch.Tensor | None = None,
    ) -> list[FrameOutput]:
        """One SAM 2 track step on ``frame`` for several objects (prompts only with a single object)."""
        model = self.model
        self.pool.begin_step()
        feats = self.features(frame)
        if mask is not None and self.cfg.use_mask_input_as_output_without_sam:
            sam = model.mask_as_output(feats.embed, feats.high_res, mask)
            return [self._slice(sam, self._memory_of(sam, sam.high_res_masks, feats, False, run_mem_encoder), 0)]
        outputs: list[FrameOutput | None] = [None] * len(tracks)
        decoded: list[tuple[list[int], SamOutput]] = []
        padded = self.padded
        if is_init_cond_frame:
            groups = {(): list(range(len(tracks)))}
            layouts = None
        else:
            layouts = [self.memory_layout(tr, frame, reverse) for tr in tracks]
            groups: dict[tuple, list[int]] = {}
            for i, lay in enumerate(layouts):  # padded: every layout in one batch
                groups.setdefault(() if padded else lay.key(), []).append(i)
        for members in groups.values():
            b = len(members)
            batch_feats = feats.expand(b)
            if layouts is None:
                pix = model.without_memory(batch_feats)
            else:
                keys = [self.conditioned.key(tracks[i].obj_id, frame, reverse, layouts[i]) for i in members]
                cached = [self.conditioned.get(k) for k in keys]
                if all(c is not None for c in cached):
                    pix = torch.cat(cached)  # memory attention already ran on exactly these memories
                else:
                    lays = [layouts[i] for i in members]
                    if padded:
                        bank = self.padded_bank.memory(lays, self._memory_pos())
                        pix = model.attend_memory(batch_feats, bank.tokens, bank.pos, bank.num_ptr_tokens,
                                                  bank.key_valid)
                    else:
                        memory, memory_pos, n_ptr = self._memory_tokens(lays)
                        pix = model.attend_memory(batch_feats, memory, memory_pos, n_ptr)
                    for j, k in enumerate(keys):
                        self.conditioned.put(k, pix[j : j + 1])
            mask_inputs = mask if mask is not None else prev_logits
            num_points = 0 if points is None else points.labels.shape[1]
            prompted = points is not None or mask_inputs is not None  # prompts come with a single object
            step = 1 if objects_one_at_a_time(model.device) and not prompted else b
            for lo in range(0, b, step):
                part = members[lo : lo + step]
                sam = model.sam_heads(
                    pix[lo : lo + step], feats.expand(len(part)).high_res,
                    None if points is None else points.coords, None if points is None else points.labels,
                    mask_inputs, multimask=model.use_multimask(is_init_cond_frame, num_points),
                )
                decoded.append((part, sam))
        # every object is decoded before any memory is made: the non-overlap rule needs them all
        masks = self._memory_masks([sam.high_res_masks for _, sam in decoded])
        for (part, sam), high_res in zip(decoded, masks):
            memory = self._memory_of(sam, high_res, feats, points is not None, run_mem_encoder)
            if padded:
                sam, memory = kept_outputs(sam, memory)
            for j, i in enumerate(part):
                outputs[i] = self._slice(sam, memory, j)
        return outputs  # type: ignore[return-value]

    def _memory_masks(self, batches: list[torch.Tensor]) -> list[torch.Tensor]:
        """The high-res logits the memory encoder sees, per batch (non-overlapping if enabled)."""
        if not self.non_overlap_memory or sum(b.shape[0] for b in batches) < 2:
            return batches
        exclusive = exclusive_logits(torch.cat(batches))  # (N, 1, S, S) over all objects of the frame
        return list(exclusive.split([b.shape[0] for b in batches]))

    def _memory_of(self, sam, high_res: torch.Tensor, feats: ImageFeatures, from_points: bool,
                   run: bool) -> torch.Tensor | None:
        """Memories (B, mem_dim, h, w) of a batch's predictions, or None when not wanted yet."""
        if not run or self.cfg.num_maskmem == 0:
            return None
        b = high_res.shape[0]
        return self._encode(feats.embed.expand(b, -1, -1, -1), high_res, sam.object_score_logits, from_points)

    @staticmethod
    def _slice(sam, memory: torch.Tensor | None, j: int) -> FrameOutput:
        """Object j of a batch as a stored output."""
        mem = None if memory is None else memory[j : j + 1]
        return FrameOutput(
            pred_masks=sam.low_res_masks[j : j + 1].float(),
            obj_ptr=sam.obj_ptr[j : j + 1].float(),
            object_score_logits=sam.object_score_logits[j : j + 1].float(),
            maskmem_features=mem,
        )

    def _encode(self, embed, high_res_masks, scores, from_points: bool) -> torch.Tensor:
        feats, pos = self.model.encode_memory(embed, high_res_masks, scores, from_points)
        if self._maskmem_pos is None:
            self._maskmem_pos = pos[:1].float().clone()
        return feats.to(torch.bfloat16)  # stored as SAM 2 stores memories

    def encode_prompted(self, frame: int, outs: list[FrameOutput]) -> None:
        """Memories for the objects prompted on one frame, from their low-res logits (binarised,
        as SAM 2 does), as one batch."""
        feats = self.features(frame)
        size = self.model.image_size
        device = self.model.device
        high = resize_bilinear(torch.cat([o.pred_masks for o in outs]).to(device), (size, size))  # (N, 1, S, S)
        (high,) = self._memory_masks([high])
        scores = torch.cat([o.object_score_logits for o in outs]).to(device)
        memory = self._encode(feats.embed.expand(len(outs), -1, -1, -1), high, scores, True)
        if self.padded:  # kept across frames: not a compiled part's output buffer (see padded.kept_outputs)
            memory = memory.clone()
        for j, out in enumerate(outs):
            out.maskmem_features = memory[j : j + 1]


def exclusive_logits(logits: torch.Tensor) -> torch.Tensor:
    """(N, ...) logits of N objects: where another object scores higher, at most -10 (SAM 2's rule)."""
    winner = logits.argmax(0, keepdim=True)
    own = torch.arange(logits.shape[0], device=logits.device).view(-1, *([1] * (logits.dim() - 1)))
    return torch.where(winner == own, logits, logits.clamp(max=-10.0))


class ConditionedCache:
    """Memory-conditioned features of recent (object, frame) steps, so a click on a tracked frame
    skips memory attention when the memories it would read are exactly those used before.

    Keys name every stored output read by its never-reused ``uid``.
    """

    def __init__(self, max_bytes: int) -> None:
        self._items: ByteLRU[tuple, torch.Tensor] = ByteLRU(max_bytes, tensor_bytes, keep_newest=False)

    @staticmethod
    def key(obj_id: int, frame: int, reverse: bool, layout: MemoryLayout) -> tuple:
        return (
            obj_id, frame, reverse,
            tuple((t, f, out.uid) for t, f, out in layout.spatial),
            tuple((d, out.uid) for d, out in layout.pointers),
        )

    def get(self, key: tuple) -> torch.Tensor | None:
        return self._items.get(key)

    def put(self, key: tuple, pix: torch.Tensor) -> None:
        if key not in self._items:
            self._items.put(key, pix.clone())

    @property
    def max_bytes(self) -> int:
        return self._items.max_bytes

    @max_bytes.setter
    def max_bytes(self, value: int) -> None:
        self._items.max_bytes = value

    def clear(self) -> None:
        self._items.clear()
