"""``load_model``: from a model name or a checkpoint file to a ready :class:`~sam2_plugins.Sam2`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from .checkpoints import (
    CheckpointError,
    bundled_names,
    bundled_weights,
    infer_official_config,
    load_weights,
    read_state_dict,
    resolve_checkpoint,
    sibling_config,
    to_original_layout,
)
from .config import OFFICIAL_MODEL_NAMES, Sam2Config, official_config, parse_config
from .engine import Sam2
from .hardware import cpu_prefers_bf16
from .model.sam2 import Sam2Model

_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
           "float16": torch.float16, "fp16": torch.float16}


def pick_device(device: "str | torch.device" = "auto") -> torch.device:
    """"auto": CUDA, else Apple MPS, else CPU."""
    if str(device) != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(device: torch.device, dtype: "str | torch.dtype" = "auto") -> torch.dtype:
    """"auto": bfloat16 autocast on CUDA and on CPUs where bf16 beats float32 (AMX, or AVX512-BF16 on
    AMD); float32 elsewhere."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        if device.type == "cuda" or (device.type == "cpu" and cpu_prefers_bf16()):
            return torch.bfloat16
        return torch.float32
    if dtype not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; use one of: auto, {', '.join(_DTYPES)}")
    return _DTYPES[dtype]


def _resized(model: Sam2Model, image_size: int) -> Sam2Model:
    """The same weights working at another input resolution."""
    if image_size < 64 or image_size % 32:
        raise ValueError(f"image_size must be a multiple of 32 and at least 64, got {image_size}")
    resized = Sam2Model(dataclasses.replace(model.config, image_size=image_size))
    resized.load_state_dict(model.state_dict(), strict=True)
    return resized


def build_model(config: "Sam2Config | Mapping[str, Any] | str | Path") -> Sam2Model:
    """A randomly initialised model of the given (official-style) config."""
    return Sam2Model(parse_config(config))


def load_model(
    name_or_path: "str | Path",
    *,
    config: "Sam2Config | Mapping[str, Any] | str | Path | None" = None,
    device: "str | torch.device" = "auto",
    dtype: "str | torch.dtype" = "auto",
    image_size: int | None = None,
    progress: "Callable[[int, int], Any] | None" = None,
) -> Sam2:
    """Load SAM 2 / 2.1 weights by name (``sam2.1-hiera-tiny``, ...; or a bundled model such as
    ``micro-synthetic``) or from a file (.pt/.pth with Meta's layout, .safetensors in Meta's or
    Hugging Face transformers' layout). ``config`` describes a custom or fine-tuned model.
    ``image_size`` overrides the working resolution (a multiple of 32; e.g. 512 for a 1024 model:
    several times faster per frame, less accurate on small objects). ``device`` "auto" picks CUDA,
    then Apple MPS, then the CPU; ``dtype`` "auto" picks bfloat16 where it is faster (see
    :func:`pick_dtype`). ``progress(bytes_done, bytes_total)`` follows the download of an official
    checkpoint on first use.
    """
    name = str(name_or_path)
    bundled = bundled_weights(name)
    if bundled is not None:
        path, bundled_config = bundled
        config = config if config is not None else bundled_config
    elif name in OFFICIAL_MODEL_NAMES:
        path = resolve_checkpoint(name, progress=progress)
        config = config if config is not None else official_config(name)
    else:
        path = Path(name_or_path)
        if not path.exists():
            known = ", ".join(list(OFFICIAL_MODEL_NAMES) + bundled_names())
            raise CheckpointError(f"no checkpoint file {path} and no model of that name (known names: {known})")
    state = to_original_layout(read_state_dict(path), path)
    if config is None:
        config = sibling_config(path)
    cfg = parse_config(config) if config is not None else infer_official_config(state)
    if cfg is None:
        raise CheckpointError(
            f"cannot tell the architecture of {path}: pass config= (an official-style YAML/JSON config)"
        )
    model = Sam2Model(cfg)
    load_weights(model, state, path)
    if image_size is not None and image_size != cfg.image_size:
        model = _resized(model, image_size)
    dev = pick_device(device)
    compute_dtype = pick_dtype(dev, dtype)
    return Sam2(model.to(dev).eval(), compute_dtype=compute_dtype, weights=str(path))
