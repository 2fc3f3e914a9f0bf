"""``finetune``: adapt a SAM 2 / 2.1 model to your own annotated videos.

    from sam2_plugins.train import finetune
    finetune("my_timelapses/", init="sam2.1-hiera-tiny", out="cells.safetensors", steps=2000)

then ``load_trained("cells.safetensors")``, or ``load_model("cells.safetensors",
config="cells.config.json")``. The data layout is described in :mod:`sam2_plugins.train.folder`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ..checkpoints import config_path_for, save_model
from .data import ClipSettings, MixedDataset, SyntheticCells
from .folder import FolderDataset
from .loop import Trainer, TrainSettings
from .unroll import PromptSettings


def checkpoint_path_for(out: str | Path) -> Path:
    """``model.safetensors`` -> ``model.ckpt`` (the resumable training state next to the output)."""
    out = Path(out)
    stem = out.name[: -len(".safetensors")] if out.name.endswith(".safetensors") else out.stem
    return out.with_name(stem + ".ckpt")


def load_trained(path: str | Path, device: str = "auto"):
    """Load a model written by :func:`finetune` (weights + sibling config)."""
    from .. import load_model

    return load_model(path, config=config_path_for(path), device=device)


def finetune(
    data_dir: str | Path,
    init: str | Path = "sam2.1-hiera-tiny",
    out: str | Path = "model.safetensors",
    steps: int = 1000,
    *,
    init_config: str | Path | None = None,
    lr: float = 2e-5,
    clip_len: int = 8,
    max_objects: int = 3,
    batch: int = 1,
    max_stride: int = 1,
    correction_points: int = 7,
    freeze_image_encoder: bool = False,
    mix_synthetic: float = 0.0,
    skip_divided: bool = False,
    exit_clips: float = 0.0,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 100,
    resume: bool = False,
    data_workers: int = 0,
    device: str = "auto",
    autocast: bool | None = None,
    seed: int = 0,
    save_dtype: torch.dtype = torch.float32,
    progress: Callable[[int, int, dict], Any] | None = None,
    cancel: Any = None,
) -> Path | None:
    """Fine-tune ``init`` (a model name, or a weights file with ``init_config`` if not official)
    on the annotated videos in ``data_dir``; write ``out`` (.safetensors, Meta's key layout)
    and its ``.config.json``. Returns the weights path, or None when cancelled (the
    checkpoint then holds the progress: call again with ``resume=True``).

    Training follows SAM 2's recipe (see :mod:`sam2_plugins.train.unroll`): 8-frame clips,
    mask / click / box prompts with corrective clicks, focal + dice + IoU + presence losses,
    AdamW with warm-up and cosine decay, gradient clipping at 0.1. ``mix_synthetic`` (0..1)
    mixes that fraction of synthetic cell movies in. ``batch``: clips of different videos per
    optimizer step, run as one batch (worth it where the device has parallel headroom: a GPU).
    ``max_stride``: clips take every k-th frame, k drawn from 1..max_stride, so the model also
    learns motion faster than the data's frame rate shows.
    ``skip_divided``: once a cell divides (its label ends and new labels cover at least half of
    its last footprint), its later frames leave the losses instead of teaching "absent" where the
    daughters lie (see :func:`sam2_plugins.train.events.continued_by_new_labels`).
    ``exit_clips`` (0..1): that share of the clips ends 2-3 frames after a tracked object leaves
    the view for good, so the model learns to let a track end there (see
    :func:`sam2_plugins.train.events.departures`).
    ``data_workers``: background processes that read and prepare the next clips while a step
    runs (the result does not depend on their number).
    ``autocast``: bfloat16 autocast; None picks it where ``dtype="auto"`` picks bfloat16 (CUDA, and
    the CPUs of :func:`sam2_plugins.hardware.bf16_beats_fp32`).
    ``progress(step, total, metrics)`` is called after each step; ``cancel`` (an Event or a
    callable) stops between steps.
    """
    from .. import load_model
    from ..api import pick_device, pick_dtype

    out = Path(out)
    if out.suffix != ".safetensors":
        raise ValueError(f"--out must name a .safetensors file, got {out}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if batch < 1:
        raise ValueError(f"batch must be at least 1 clip, got {batch}")
    if data_workers < 0:
        raise ValueError(f"data_workers must be 0 or more, got {data_workers}")
    if max_stride < 1:
        raise ValueError(f"max_stride must be at least 1 frame, got {max_stride}")
    if not 0.0 <= exit_clips <= 1.0:
        raise ValueError(f"exit_clips is a share of the clips, from 0 to 1: got {exit_clips}")
    data = FolderDataset(data_dir)
    dataset = data if mix_synthetic <= 0 else MixedDataset([(data, 1 - mix_synthetic), (SyntheticCells(), mix_synthetic)],
                                                          seed=seed)
    dev = pick_device(device)
    model = load_model(init, config=init_config, device=dev, dtype="float32").network
    if autocast is None:  # bfloat16 where inference would use it: only where it is the faster dtype
        autocast = pick_dtype(dev, "auto") == torch.bfloat16
    settings = TrainSettings(
        steps=steps, lr=lr, warmup_steps=min(50, max(1, steps // 20)), autocast=autocast,
        freeze_image_encoder=freeze_image_encoder, checkpoint_every=checkpoint_every, seed=seed,
        per_step_clips=True,  # clips do not depend on data_workers
        clip=ClipSettings(clip_len=clip_len, max_objects=max_objects, videos_per_step=batch,
                          max_stride=max_stride, skip_divided=skip_divided, exit_prob=exit_clips),
        prompts=replace(PromptSettings(), num_correction_points=correction_points),
    )
    ckpt = Path(checkpoint) if checkpoint else checkpoint_path_for(out)
    trainer = Trainer(model, dataset, settings, checkpoint=ckpt, data_workers=data_workers)
    if resume:
        if not ckpt.is_file():
            raise FileNotFoundError(f"cannot resume: no checkpoint at {ckpt}")
        trainer.load_checkpoint()
    t0 = time.perf_counter()
    finished = trainer.run(progress, cancel)
    if not finished:
        return None
    info = {"recipe": "sam2_plugins.train.finetune", "init": str(init), "data": str(data_dir), "steps": steps,
            "settings": settings.to_dict(), "train_seconds": round(trainer.seconds, 1),
            "train_seconds_this_run": round(time.perf_counter() - t0, 1)}
    weights, _ = save_model(model, out, dtype=save_dtype, info=info)
    return weights
