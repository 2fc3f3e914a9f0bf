"""Checkpoint files: safe reading, Meta's and transformers' key layouts, strict loading, saving.

Files never execute code on load: ``.safetensors``, or pickles read with
``torch.load(weights_only=True)``. State dicts in Hugging Face transformers' layout are
converted to Meta's (:mod:`.hf_layout`). A model is saved as ``<name>.safetensors`` (Meta's key
layout) beside ``<name>.config.json`` (the official config layout), which
:func:`sam2_plugins.load_model` finds on its own.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..config import OFFICIAL_MODEL_NAMES, Sam2Config, config_document, official_config, parse_config, write_config


class CheckpointError(ValueError):
    """A checkpoint file is missing, unsafe, corrupt or does not fit the model."""


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


def config_path_for(weights: str | Path) -> Path:
    """``model.safetensors`` -> ``model.config.json`` (the sibling config of a weights file)."""
    weights = Path(weights)
    stem = weights.name[: -len(".safetensors")] if weights.name.endswith(".safetensors") else weights.stem
    return weights.with_name(stem + ".config.json")


def save_model(
    model: Any, out: str | Path, *, dtype: torch.dtype = torch.float32,
    info: Mapping[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Save a model (a :class:`~sam2_plugins.Sam2` or its network) as ``out`` (.safetensors,
    Meta's keys) and its sibling ``.config.json`` (official layout; ``info`` goes in as its
    ``training`` record). Both are written atomically.

    Returns (weights path, config path). ``dtype`` may be float16 to halve the file.
    """
    from safetensors.torch import save

    from ..exports import atomic_file

    out = Path(out)
    if out.suffix != ".safetensors":
        raise ValueError(f"the output file must end in .safetensors, got {out}")
    model = getattr(model, "network", model)
    state = {k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous()
             for k, v in model.state_dict().items()}
    cfg: Sam2Config = model.config  # type: ignore[assignment]
    extra = {"training": dict(info)} if info else {}
    if parse_config(config_document(cfg, **extra)) != cfg:  # pragma: no cover - guards the writer against drift
        raise RuntimeError("internal error: the config to write does not describe the model")
    with atomic_file(out) as tmp:
        tmp.write_bytes(save(state, metadata={"format": "pt"}))
    cfg_path = write_config(cfg, config_path_for(out), **extra)
    return out, cfg_path
