"""The training loop: optimiser, schedule, progress, cancel, and resumable checkpoints.

A checkpoint (``torch.save``, read back with ``weights_only=True``) holds the model and
optimiser states, the step, and every random state (NumPy generator for data and prompts,
torch's global generator for dropout), so ``resume=True`` continues exactly: the next step
sees the same clip, prompts and dropout as an uninterrupted run. It is written atomically
(temporary file + rename) every ``checkpoint_every`` steps, on cancel and at the end.

Inside a process group (see :mod:`.parallel`) every process trains on its own clips and the
gradients are averaged; rank 0 writes the checkpoint, which holds every rank's random state.

With ``per_step_clips`` each clip has a random stream of its own (see :mod:`.feed`), and
``Trainer(data_workers=N)`` draws the next clips in N background processes while a step runs;
any N, 0 included, gives the same run. ``thread_schedule`` sets the trainer's torch threads by
step (a resumed run too), and ``run`` gives the process its own thread count back at the end.

``Trainer(extra_losses={name: ClipLoss})`` adds losses the caller defines (see
:class:`~sam2_plugins.train.unroll.ClipLoss`); ``TrainSettings.extra_losses`` holds their
weights, so the recorded settings still describe the whole run.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..cancel import is_cancelled
from ..exports import atomic_file
from ..model.sam2 import Sam2Model
from .data import Clip, ClipSettings, VideoDataset, draw_clip
from .feed import ClipFeed, clip_settings_at, draw_indexed_clip
from .parallel import any_process, average_gradients, broadcast_parameters, gather, world
from .unroll import ClipLoss, PromptSettings, plan_clip, unroll_clip

ProgressFn = Callable[[int, int, dict], Any]


@dataclass
class TrainSettings:
    """Hyperparameters of a run (defaults suit fine-tuning a pretrained model)."""

    steps: int = 1000
    lr: float = 5e-5
    image_encoder_lr_scale: float = 0.6  # SAM 2.1 fine-tuning: vision lr 3e-6 vs base 5e-6
    min_lr_ratio: float = 0.1  # cosine decay to lr * this
    warmup_steps: int = 20
    lr_restarts: tuple[int, ...] = ()  # steps where the schedule starts again (warm-up, then cosine)
    # peak of the restarted schedules for the parts single frames train (encoder, prompt encoder,
    # decoder), as a share of lr; the memory's own parts restart at lr. From scratch, an image-only
    # warm-up leaves the memory untrained but the decoder trained: a full restart unlearns the decoder
    restart_lr_scale: float = 1.0
    weight_decay: float = 0.1
    grad_clip: float = 0.1
    clips_per_step: int = 1
    ptr_frames: int | None = None  # video length assumed by the pointer time code (None: clip length)
    autocast: bool = True  # bfloat16 autocast (CUDA; CPUs where it is faster, see hardware.bf16_beats_fp32)
    loss_size: int | None = None  # side of the mask loss (None: model input size, as SAM 2)
    # single-frame step chance: ((step, prob), ...) breakpoints, linear in between (None: clip.image_prob)
    image_prob_schedule: tuple[tuple[int, float], ...] | None = None
    # ((name, weight, steps), ...): weight of each loss given by Trainer(extra_losses=), decaying
    # linearly to 0 over ``steps`` steps (0: constant); a loss of weight 0 is not computed
    extra_losses: tuple[tuple[str, float, int], ...] = ()
    # extra focal weight on other instances' pixels: a mask spilling into a touching cell costs
    # more than one spilling into background
    neighbour_weight: float = 0.0
    # presence-loss weight where the object is absent (SAM 2: 1.0): raising it matters where few
    # absent frames are left in the losses (ClipSettings.skip_divided leaves divided mothers out)
    absent_weight: float = 1.0
    focal_alpha: float = 0.25  # SAM 2's focal alpha ...
    focal_alpha_start: float | None = None  # ... reached from this value (from-scratch warm-up) ...
    focal_alpha_steps: int = 0  # ... over this many steps
    freeze_image_encoder: bool = False
    # ((step, threads), ...): torch CPU threads from each step on (empty: the process's own setting).
    # Part of the run: another thread count rounds floats differently, so it gives other weights
    thread_schedule: tuple[tuple[int, int], ...] = ()
    checkpoint_every: int = 100
    seed: int = 0
    # each clip drawn from its own seed (seed, rank, clip index) rather than the trainer's stream:
    # needed to draw clips in background processes (Trainer(data_workers=)); changes the run
    per_step_clips: bool = False
    clip: ClipSettings = field(default_factory=ClipSettings)
    prompts: PromptSettings = field(default_factory=PromptSettings)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainSettings:
        d = dict(d)
        clip = ClipSettings(**d.pop("clip", {}))
        prompts = PromptSettings(**d.pop("prompts", {}))
        d["extra_losses"] = tuple(tuple(e) for e in d.get("extra_losses", ())) + _flat_extra_losses(d)
        d["lr_restarts"] = tuple(d.get("lr_restarts", ()))
        d["thread_schedule"] = tuple(tuple(p) for p in d.get("thread_schedule", ()))
        if d.get("image_prob_schedule") is not None:
            d["image_prob_schedule"] = tuple(tuple(p) for p in d["image_prob_schedule"])
        return cls(clip=clip, prompts=prompts, **d)


# Records and checkpoints of the micro recipe name its two extra losses' weights as flat fields: read
# them as entries of ``extra_losses`` (an "attn_aux" weight without steps was off, an "instance" one
# constant), so the shipped weights' record and its checkpoints still load and compare equal.
_FLAT_EXTRA_LOSSES = (("attn_aux", "attn_aux_weight", "attn_aux_steps", False),
                      ("instance", "instance_aux_weight", "instance_aux_steps", True))


def _flat_extra_losses(d: dict[str, Any]) -> tuple[tuple[str, float, int], ...]:
    out = []
    for name, weight_key, steps_key, constant_without_steps in _FLAT_EXTRA_LOSSES:
        weight, steps = float(d.pop(weight_key, 0.0)), int(d.pop(steps_key, 0))
        if weight > 0 and (steps or constant_without_steps):
            out.append((name, weight, steps))
    return tuple(out)


def extra_loss_weight(step: int, weight: float, steps: int) -> float:
    """The weight of an extra loss at ``step``: ``weight`` decaying linearly to 0 over ``steps`` (0: constant)."""
    return weight * max(0.0, 1.0 - step / steps) if steps else weight


def checkpoint_record(path: str | Path) -> tuple[TrainSettings, dict | None]:
    """The training settings a resumable checkpoint was written with, and the description of its
    data (None: none given), from one read of the file."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    return TrainSettings.from_dict(json.loads(state["settings"])), _data_note(state)


def _data_note(state: dict) -> dict | None:
    return json.loads(state.get("data", "null"))


def threads_at(step: int, s: TrainSettings) -> int | None:
    """The torch thread count ``thread_schedule`` sets for ``step`` (None: not set)."""
    threads = None
    for start, count in sorted(s.thread_schedule):
        if step >= start:
            threads = int(count)
    return threads


def schedule_segment(step: int, s: TrainSettings) -> tuple[int | None, int]:
    """(the restart whose schedule ``step`` runs in, None before any; the step that schedule ends at)."""
    start, end = None, s.steps
    for restart in sorted(s.lr_restarts):
        if step >= restart:
            start = restart
        else:
            end = restart
            break
    return start, end


def lr_at(step: int, s: TrainSettings) -> float:
    """Linear warm-up, then cosine decay from ``lr`` to ``lr * min_lr_ratio``; each of
    ``lr_restarts`` starts that schedule again, decaying until the next restart or the end."""
    restart, end = schedule_segment(step, s)
    start = restart or 0
    local = step - start
    if local < s.warmup_steps:
        return s.lr * (local + 1) / s.warmup_steps
    span = max(1, end - start - s.warmup_steps)
    frac = min(1.0, (local - s.warmup_steps) / span)
    return s.lr * (s.min_lr_ratio + (1 - s.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac)))


# parameters only video clips train: single frames use neither memories nor object pointers
MEMORY_PARTS = ("memory_encoder.", "memory_attention.", "obj_ptr_proj.", "obj_ptr_tpos_proj.",
                "maskmem_tpos_enc", "no_obj_ptr", "no_obj_embed_spatial")


def _param_groups(model: Sam2Model, s: TrainSettings) -> list[dict]:
    # (vision, no_decay, memory); memory parts get a group of their own only when their schedule
    # differs, so runs without restart_lr_scale keep the optimiser layout of their checkpoints
    groups: dict[tuple[bool, bool, bool], list[torch.nn.Parameter]] = {}
    split_memory = s.restart_lr_scale != 1.0
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        vision = name.startswith("image_encoder.")
        no_decay = p.ndim <= 1 or name.endswith(".bias") or "pos_embed" in name or "norm" in name
        memory = split_memory and name.startswith(MEMORY_PARTS)
        groups.setdefault((vision, no_decay, memory), []).append(p)
    return [
        {"params": ps, "lr_scale": s.image_encoder_lr_scale if vision else 1.0,
         "restart_scale": 1.0 if memory else s.restart_lr_scale,
         "weight_decay": 0.0 if no_decay else s.weight_decay}
        for (vision, no_decay, memory), ps in sorted(groups.items())
    ]


class Trainer:
    """Trains a :class:`Sam2Model` on clips drawn from a :class:`VideoDataset`. ``data_note`` (a
    JSON-able description of the dataset's options) is saved with the checkpoint, and a checkpoint
    with another note is refused: its weights would belong to no single dataset. ``extra_losses``:
    :class:`~sam2_plugins.train.unroll.ClipLoss` hooks by name, weighted as ``settings.extra_losses``
    says (every weighted name needs a hook); each step reports every one's value under its name."""

    def __init__(self, model: Sam2Model, dataset: VideoDataset, settings: TrainSettings,
                 checkpoint: str | Path | None = None, data_workers: int = 0, data_note: dict | None = None,
                 extra_losses: Mapping[str, ClipLoss] | None = None) -> None:
        missing = [name for name, _, _ in settings.extra_losses if name not in (extra_losses or {})]
        if missing:
            raise ValueError(f"the settings weigh extra losses that were not given: {', '.join(missing)} "
                             "(pass them as Trainer(extra_losses={name: ClipLoss}))")
        self.extra_losses = dict(extra_losses or {})
        if data_workers < 0:
            raise ValueError(f"data_workers must be 0 or more, got {data_workers}")
        if data_workers and not settings.per_step_clips:
            raise ValueError("data_workers needs per_step_clips=True: otherwise clips come from the "
                             "trainer's own random stream, which other processes cannot share")
        self.model = model
        self.data_workers = data_workers
        self._feed: ClipFeed | None = None
        self.dataset = dataset
        self.data_note = data_note
        self.s = settings
        self.checkpoint = Path(checkpoint) if checkpoint else None
        if settings.freeze_image_encoder:
            for p in model.image_encoder.parameters():
                p.requires_grad_(False)
        # foreach: one kernel per update term over all tensors, not a Python loop over parameters.
        # It computes the same floats as the loop (a test checks), so recipes keep their weights
        self.optimizer = torch.optim.AdamW(_param_groups(model, settings), lr=settings.lr, betas=(0.9, 0.999),
                                           foreach=True)
        self.step = 0
        self.seconds = 0.0  # time spent in run(), over every resume of the run
        self.rank, self.world_size = world()
        broadcast_parameters(model)  # every process starts from rank 0's weights
        # rank 0 keeps the single-process stream; the others draw different clips
        self.rng = np.random.default_rng(settings.seed if self.rank == 0 else (settings.seed, self.rank))
        torch.manual_seed(settings.seed + self.rank)
        self.history: list[dict] = []

    # ------------------------------------------------------------------ one step
    def train_step(self) -> dict[str, float]:
        model, s = self.model, self.s
        model.train()
        threads = threads_at(self.step, s)
        if threads is not None and torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        lr = lr_at(self.step, s)
        restarted = schedule_segment(self.step, s)[0] is not None
        for g in self.optimizer.param_groups:
            g["lr"] = lr * g["lr_scale"] * (g.get("restart_scale", 1.0) if restarted else 1.0)
        device = model.device
        totals: dict[str, float] = {}
        for i in range(s.clips_per_step):
            clip = self._draw(self.step * s.clips_per_step + i)
            plan = plan_clip(clip.gt.shape[0], self.rng, s.prompts)
            gen = torch.Generator(device=device).manual_seed(int(self.rng.integers(2**62)))
            weights = {name: extra_loss_weight(self.step, weight, steps) for name, weight, steps in s.extra_losses}
            active = {name: self.extra_losses[name] for name, w in weights.items() if w > 0}
            needs_labels = s.neighbour_weight > 0 or any(hook.uses_labels for hook in active.values())
            res = unroll_clip(model, clip.pixels.to(device), clip.gt.to(device), plan, s.prompts, gen, self.rng,
                              ptr_frames=s.ptr_frames, autocast=s.autocast, loss_size=s.loss_size,
                              focal_alpha=self._focal_alpha(), object_clip=clip.object_clip,
                              labels=clip.labels.to(device) if needs_labels else None,
                              neighbour_weight=s.neighbour_weight, absent_weight=s.absent_weight,
                              unscored=None if clip.unscored is None else clip.unscored.to(device),
                              extra_losses=active)
            loss = res.loss.total
            for name, value in res.extra.items():
                loss = loss + weights[name] * value
            loss = loss / s.clips_per_step
            if loss.requires_grad:  # False when every frame of the clip was given its GT mask
                loss.backward()
            values = res.loss.as_floats()
            for name in weights:
                values[name] = float(res.extra[name].detach()) if name in res.extra else 0.0
            values["miou"] = _mean_iou(res.masks, clip.gt)
            values["frames"] = float(clip.gt.shape[0])
            for k, v in values.items():
                totals[k] = totals.get(k, 0.0) + v / s.clips_per_step
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        average_gradients(params)
        if s.grad_clip > 0:
            totals["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(params, s.grad_clip))
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        totals["lr"] = lr
        return totals

    def _draw(self, index: int) -> Clip:
        """The run's ``index``-th clip (the trainer's stream, its own seed, or a data process)."""
        s, size = self.s, self.model.image_size
        if not s.per_step_clips:
            return draw_clip(self.dataset, size, clip_settings_at(s, self.step), self.rng)
        if not self.data_workers:
            return draw_indexed_clip(self.dataset, size, s, self.rank, index)
        if self._feed is None or self._feed.next_index != index:
            self.close()
            self._feed = ClipFeed(self.dataset, size, s, self.rank, start=index, workers=self.data_workers)
        return self._feed.next()

    def close(self) -> None:
        """Stop the data processes, if any (a later step starts them again)."""
        if self._feed is not None:
            self._feed.close()
            self._feed = None

    def _focal_alpha(self) -> float:
        s = self.s
        if s.focal_alpha_start is None or not s.focal_alpha_steps:
            return s.focal_alpha
        frac = min(1.0, self.step / s.focal_alpha_steps)
        return s.focal_alpha_start + (s.focal_alpha - s.focal_alpha_start) * frac

    # ------------------------------------------------------------------ the run
    def run(self, progress: ProgressFn | None = None, cancel: Any = None) -> bool:
        """Train until ``settings.steps``; returns False when cancelled (a checkpoint is saved).
        The process's torch thread count is set back afterwards (see ``thread_schedule``)."""
        threads_before = torch.get_num_threads()
        started, seconds_before = time.perf_counter(), self.seconds
        try:
            while self.step < self.s.steps:
                if any_process(is_cancelled(cancel)):
                    self.save_checkpoint()
                    return False
                t0 = time.perf_counter()
                metrics = self.train_step()
                metrics["sec"] = time.perf_counter() - t0
                self.seconds = seconds_before + time.perf_counter() - started
                metrics["step"] = self.step
                self.history.append(metrics)
                if self.checkpoint and self.s.checkpoint_every and self.step % self.s.checkpoint_every == 0:
                    self.save_checkpoint()
                if progress is not None:
                    progress(self.step, self.s.steps, metrics)
            self.save_checkpoint()
            return True
        finally:
            self.close()
            torch.set_num_threads(threads_before)

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict[str, Any]:
        """The resumable state (in a process group: a collective call, every rank's random state)."""
        rngs = gather((json.dumps(self.rng.bit_generator.state), torch.get_rng_state()))
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "seconds": self.seconds,
            "numpy_rng": rngs[0][0],
            "torch_rng": rngs[0][1],
            "rank_numpy_rngs": json.dumps([r[0] for r in rngs]),
            "rank_torch_rngs": [r[1] for r in rngs],
            "settings": json.dumps(self.s.to_dict()),
            "config": json.dumps(self.model.config.to_dict()),
            **({"data": json.dumps(self.data_note)} if self.data_note is not None else {}),
        }

    def save_checkpoint(self, path: str | Path | None = None) -> Path | None:
        """Write the checkpoint (rank 0 writes; every rank must call this)."""
        path = Path(path) if path else self.checkpoint
        if path is None:
            return None
        state = self.state()
        if self.rank == 0:
            with atomic_file(path) as tmp:
                torch.save(state, tmp)
        return path

    def load_checkpoint(self, path: str | Path | None = None) -> None:
        self.close()  # clips drawn ahead belong to the old position
        path = Path(path) if path else self.checkpoint
        state = torch.load(path, map_location="cpu", weights_only=True)
        saved_cfg = json.loads(state["config"])
        saved_cfg.pop("name", None)
        current = json.loads(json.dumps(self.model.config.to_dict()))
        current.pop("name", None)
        if saved_cfg != current:
            raise ValueError(f"checkpoint {path} was made for a different model config")
        saved_note = _data_note(state)
        if saved_note != json.loads(json.dumps(self.data_note)):
            raise ValueError(f"checkpoint {path} was trained on other data ({saved_note}; this run: {self.data_note})")
        numpy_rngs = json.loads(state.get("rank_numpy_rngs", "null")) or [state["numpy_rng"]]
        torch_rngs = state.get("rank_torch_rngs") or [state["torch_rng"]]
        if len(numpy_rngs) != self.world_size:
            raise ValueError(f"checkpoint {path} was written by {len(numpy_rngs)} training process(es); "
                             f"resume it with the same number (this run has {self.world_size})")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        for group in self.optimizer.param_groups:  # a checkpoint's groups may name foreach None: keep ours
            group["foreach"] = True
        self.step = int(state["step"])
        self.seconds = float(state.get("seconds", 0.0))
        self.rng.bit_generator.state = json.loads(numpy_rngs[self.rank])
        torch.set_rng_state(torch_rngs[self.rank])


def _mean_iou(masks: list[torch.Tensor], gt: torch.Tensor) -> float:
    """Mean IoU of the final predictions of a clip over (frame, object) pairs with a present object."""
    pred = torch.stack([m.to(gt.device) > 0 for m in masks]).flatten(2)  # (T, B, S * S)
    gt = gt.flatten(2)
    # int32 counts: a sum over bools in the default int64 takes 2.5x as long (video steps: ~25 ms)
    inter = (pred & gt).sum(-1, dtype=torch.int32)
    gt_area = gt.sum(-1, dtype=torch.int32)
    union = pred.sum(-1, dtype=torch.int32) + gt_area - inter
    present = gt_area > 0
    return float((inter.float() / union.clamp(min=1).float())[present].mean()) if present.any() else float("nan")
