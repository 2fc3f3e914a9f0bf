"""Checkpoints: model names, the local cache, hub download, safe reading and key layouts.

Names (``sam2.1-hiera-tiny`` ...) resolve to ``<cache>/<file>``; the cache directory is
``$SAM2_PLUGINS_CACHE`` or ``~/.cache/sam2_plugins``. A name that is not cached is
downloaded from the Hugging Face hub repository ``facebook/<name>``. Files never execute
code on load: ``.safetensors``, or pickles read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import pickle
from importlib import resources
from pathlib import Path
from typing import Mapping

import torch

from .config import OFFICIAL_MODEL_NAMES, Sam2Config, official_config

CACHE_ENV = "SAM2_PLUGINS_CACHE"


class CheckpointError(ValueError):
    """A checkpoint file is missing, unsafe, corrupt or does not fit the model."""


def cache_dir() -> Path:
    """Directory where named checkpoints are looked for and downloaded to."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "sam2_plugins")


def hub_location(name: str) -> tuple[str, str]:
    """(hub repository, file name) of an official model name."""
    return f"facebook/{name}", OFFICIAL_MODEL_NAMES[name] + ".pt"


def bundled_weights(name: str) -> tuple[Path, Path] | None:
    """(weights, config) of a model shipped inside the package, if ``name`` is one."""
    folder = resources.files("sam2_plugins").joinpath("weights")
    weights, config = folder.joinpath(f"{name}.safetensors"), folder.joinpath(f"{name}.config.json")
    if weights.is_file() and config.is_file():
        return Path(str(weights)), Path(str(config))
    return None


def bundled_names() -> list[str]:
    folder = resources.files("sam2_plugins").joinpath("weights")
    if not folder.is_dir():
        return []
    return sorted(p.name[: -len(".safetensors")] for p in folder.iterdir() if p.name.endswith(".safetensors"))


def resolve_checkpoint(name: str, *, download: bool = True) -> Path:
    """Local path of an official model's checkpoint, downloading it when needed and possible."""
    repo, filename = hub_location(name)
    target = cache_dir() / filename
    if target.is_file():
        return target
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    how_to = (
        f"put the file {filename} from the Hugging Face hub repository {repo} at {target} "
        f"(or set {CACHE_ENV} to the folder that holds it)"
    )
    if not download or offline:
        raise CheckpointError(f"model {name!r} is not cached and downloads are off: {how_to}")
    try:
        from huggingface_hub import hf_hub_download

        target.parent.mkdir(parents=True, exist_ok=True)
        path = hf_hub_download(repo_id=repo, filename=filename, local_dir=str(target.parent))
    except Exception as err:  # noqa: BLE001 - any network/hub failure means the same to the user
        raise CheckpointError(
            f"model {name!r} is not cached and could not be downloaded ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else 'no details'}); {how_to}"
        ) from None
    return Path(path)


def read_state_dict(path: "str | Path") -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint file (.safetensors, or .pt/.pth/.bin read without running code).

    Official ``{"model": state_dict}`` wrappers are unwrapped.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except Exception as err:  # noqa: BLE001
            raise CheckpointError(f"cannot read {path}: not a valid or a truncated safetensors file ({err})") from None
    else:
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            raise CheckpointError(
                f"refusing to load {path}: it holds Python objects other than tensors, which could run "
                f"code (weights_only loading rejected it: {str(err).splitlines()[0]})"
            ) from None
        except Exception as err:  # noqa: BLE001 - truncated zip, wrong format, ...
            raise CheckpointError(f"cannot read {path}: truncated or not a PyTorch checkpoint ({err})") from None
    if isinstance(state, Mapping) and "model" in state and isinstance(state["model"], Mapping):
        state = state["model"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} does not hold a state_dict of tensors")
    return dict(state)


def to_original_layout(state: dict[str, torch.Tensor], path: "str | Path" = "<memory>") -> dict[str, torch.Tensor]:
    """Convert a Hugging Face transformers-layout state_dict to Meta's layout (others pass through)."""
    from . import hf_layout

    if hf_layout.is_hf_layout(state.keys()):
        try:
            return hf_layout.hf_to_original(state)
        except ValueError as err:
            raise CheckpointError(f"{path}: {err}") from None
    return state


def sibling_config(path: "str | Path") -> Path | None:
    """A config saved beside a weights file (``model.safetensors`` -> ``model.config.json`` / ``.yaml``)."""
    path = Path(path)
    stem = path.name.rsplit(".", 1)[0]
    for suffix in (".config.json", ".config.yaml", ".yaml"):
        candidate = path.with_name(stem + suffix)
        if candidate.is_file():
            return candidate
    return None


def infer_official_config(state: Mapping[str, torch.Tensor]) -> Sam2Config | None:
    """The official config whose layout matches these weights (trunk width, depth, 2.0 vs 2.1)."""
    pos = state.get("image_encoder.trunk.pos_embed")
    if pos is None:
        return None
    depth = 1 + max(
        (int(k.split(".")[3]) for k in state if k.startswith("image_encoder.trunk.blocks.")), default=-1
    )
    is_v21 = "no_obj_embed_spatial" in state
    for name in OFFICIAL_MODEL_NAMES:
        if name.startswith("sam2.1") != is_v21:
            continue
        cfg = official_config(name)
        if cfg.embed_dim == pos.shape[1] and sum(cfg.stages) == depth:
            return cfg
    return None


def load_weights(model: torch.nn.Module, state: Mapping[str, torch.Tensor], path: "str | Path") -> None:
    """Load with strict key and shape matching; errors name the file and list what is wrong."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} {tuple(state[k].shape)} (model expects {tuple(expected[k].shape)})"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    problems = []
    for label, items in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong)):
        if items:
            shown = ", ".join(items[:8]) + (f", ... ({len(items)} in all)" if len(items) > 8 else "")
            problems.append(f"{label}: {shown}")
    if problems:
        raise CheckpointError(f"checkpoint {path} does not fit the model config: " + "; ".join(problems))
    model.load_state_dict(state, strict=True)
