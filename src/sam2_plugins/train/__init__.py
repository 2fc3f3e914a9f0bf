"""Training and fine-tuning of the SAM 2 engine on videos (SAM 2's training recipe).

* :func:`finetune` -- fine-tune a model on your annotated videos (``sam2-plugins finetune``);
  the folder layout is documented in :mod:`sam2_plugins.train.folder`.
* :class:`Trainer` / :class:`TrainSettings` -- the loop: clips through the memory, sampled
  clicks / boxes / masks with corrective clicks, focal + dice + IoU + presence losses, extra
  losses of the caller's (:class:`ClipLoss`), progress callback, cancel, resumable atomic
  checkpoints; data-parallel over CPU processes with :func:`run_workers`
  (:mod:`sam2_plugins.train.parallel`).
* :class:`VideoDataset` -- the data protocol; :class:`SyntheticCells`, :class:`SyntheticScenes`,
  :class:`MixedDataset`, :class:`FolderDataset` implement it.
* :func:`save_model` / :func:`config_path_for` -- a model as ``.safetensors`` plus its config
  (from :mod:`sam2_plugins.checkpoints`).

The recipe of the bundled ``micro-synthetic`` model and its evaluation are scripts in the
repository's ``recipes/`` folder, not part of the installed package.
"""

from ..checkpoints import config_path_for, save_model
from ..config import official_layout
from .data import (
    ClipSettings,
    MixedDataset,
    SyntheticCells,
    SyntheticScenes,
    VideoDataset,
    batch_clips,
    draw_clip,
    sample_clip,
)
from .finetune import checkpoint_path_for, finetune, load_trained
from .folder import FolderDataset
from .loop import Trainer, TrainSettings, lr_at
from .losses import LossTerms, step_loss
from .parallel import run_workers
from .unroll import ClipLoss, ClipPlan, PromptSettings, plan_clip, unroll_clip

__all__ = [
    "ClipLoss",
    "ClipPlan",
    "ClipSettings",
    "FolderDataset",
    "LossTerms",
    "MixedDataset",
    "PromptSettings",
    "SyntheticCells",
    "SyntheticScenes",
    "TrainSettings",
    "Trainer",
    "VideoDataset",
    "batch_clips",
    "checkpoint_path_for",
    "config_path_for",
    "draw_clip",
    "finetune",
    "load_trained",
    "lr_at",
    "official_layout",
    "plan_clip",
    "run_workers",
    "sample_clip",
    "save_model",
    "step_loss",
    "unroll_clip",
]
