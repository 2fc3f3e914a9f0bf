"""SAM 2 models inside ComfyUI: the ``models/sam2`` folder, official names, precision, and ComfyUI's
model management (its device, and unloading or offloading the weights with its other models).

``load_sam2`` works without ComfyUI (device and folder given); ``comfy_*`` functions import ComfyUI
lazily and are only called by the node classes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sam2_plugins import load_model
from sam2_plugins.api import pick_dtype
from sam2_plugins.checkpoints.hub import bundled_names, hub_location, resolve_checkpoint
from sam2_plugins.config import OFFICIAL_MODEL_NAMES, official_config

__all__ = ["FOLDER", "EXTENSIONS", "PRECISIONS", "model_choices", "load_sam2", "Sam2Handle"]

FOLDER = "sam2"  # models/sam2, and the key for extra_model_paths.yaml
EXTENSIONS = {".pt", ".pth", ".safetensors"}
PRECISIONS = {"auto": "auto", "bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def model_choices(files: list[str]) -> list[str]:
    """What the loader offers: the shipped models, the official names, then other files in models/sam2
    (a file named like an official checkpoint is used for that name, so it is not listed twice)."""
    official_files = {hub_location(n)[1] for n in OFFICIAL_MODEL_NAMES}
    others = [f for f in files if Path(f).name not in official_files and not f.endswith(".config.json")]
    return bundled_names() + list(OFFICIAL_MODEL_NAMES) + others


def load_sam2(name: str, *, device: torch.device, precision: str = "auto", folders: list[str] = (),
              file_path: str | None = None, run_device: torch.device | None = None) -> Any:
    """A core ``Sam2`` for a loader choice: a shipped name, an official name (looked for in each of
    ``folders``, downloaded into the first one), or ``file_path`` (a file the user put in models/sam2).

    The weights are loaded onto ``device``; ``precision`` is chosen for ``run_device`` (default: the
    same), where the model will run: "auto" is bf16 on CUDA and on CPUs fast at it, and fp16 runs as
    fp32 on a CPU (no fast fp16 autocast there).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if name in bundled_names():
        model = load_model(name, device=device)
    elif name in OFFICIAL_MODEL_NAMES:
        found = [Path(f) / hub_location(name)[1] for f in folders if (Path(f) / hub_location(name)[1]).is_file()]
        path = found[0] if found else resolve_checkpoint(name, folder=folders[0] if folders else None)
        model = load_model(path, config=official_config(name), device=device)
    elif file_path is not None:
        model = load_model(file_path, device=device)
    else:
        raise ValueError(f"unknown SAM 2 model {name!r}: pick a listed name or put the file in models/{FOLDER}")
    target = run_device or device
    chosen = PRECISIONS[precision]
    if chosen == "auto":
        chosen = pick_dtype(target, "auto")
    elif chosen == torch.float16 and target.type == "cpu":
        chosen = torch.float32
    model.compute_dtype = chosen
    return model


# ---------------------------------------------------------------------------- ComfyUI's side
def comfy_register_folder() -> None:
    """Make ``models/sam2`` (and any ``sam2:`` entry of extra_model_paths.yaml) a ComfyUI model folder."""
    import folder_paths

    folder_paths.add_model_folder_path(FOLDER, os.path.join(folder_paths.models_dir, FOLDER), is_default=True)
    paths, _ = folder_paths.folder_names_and_paths[FOLDER]
    folder_paths.folder_names_and_paths[FOLDER] = (paths, EXTENSIONS)


def comfy_files() -> list[str]:
    import folder_paths

    return folder_paths.get_filename_list(FOLDER)


class _Weights(torch.nn.Module):
    """The network under a plain module, so ComfyUI's ModelPatcher can move it and set ``.device``."""

    def __init__(self, network: torch.nn.Module) -> None:
        super().__init__()
        self.network = network
        self.device = network.device


@dataclass(eq=False)
class Sam2Handle:
    """What the ``SAM2_MODEL`` socket carries: the core model and ComfyUI's patcher for its weights."""

    model: Any
    patcher: Any
    name: str

    def ready(self):
        """Load the weights onto ComfyUI's device (ComfyUI may have offloaded them), return the model."""
        import comfy.model_management as mm

        with torch.inference_mode(False):  # see comfy_load: moved weights stay ordinary tensors
            mm.load_models_gpu([self.patcher])
        return self.model


def comfy_load(name: str, precision: str) -> Sam2Handle:
    import comfy.model_management as mm
    import comfy.model_patcher
    import folder_paths

    device = mm.get_torch_device()
    offload = mm.unet_offload_device()
    folders = folder_paths.get_folder_paths(FOLDER)
    file_path = None
    if name not in OFFICIAL_MODEL_NAMES and name not in bundled_names():
        file_path = folder_paths.get_full_path_or_raise(FOLDER, name)
    # ComfyUI runs nodes under torch.inference_mode(); weights made there would be inference tensors,
    # which have no version counter (the core's caches key on it) and cannot be trained or edited later
    with torch.inference_mode(False):
        model = load_sam2(name, device=offload, precision=precision, folders=folders, file_path=file_path,
                          run_device=device)
    patcher = comfy.model_patcher.ModelPatcher(_Weights(model.network), load_device=device, offload_device=offload)
    return Sam2Handle(model, patcher, name)


def comfy_device_check() -> None:
    """Raise ComfyUI's interrupt exception if the user pressed Cancel."""
    import comfy.model_management as mm

    mm.throw_exception_if_processing_interrupted()


def comfy_progress(total: int):
    """A ``progress(done, total)`` callback driving ComfyUI's progress bar."""
    import comfy.utils

    bar = comfy.utils.ProgressBar(total)

    def update(done: int, new_total: int) -> None:
        bar.update_absolute(done, new_total)

    return update
