"""Checkpoints: model names, the local cache, hub download, safe reading, key layouts and saving.

* :mod:`.hub` -- names to files: the cache (``$SAM2_PLUGINS_CACHE`` or ``~/.cache/sam2_plugins``),
  the weights bundled with the package, downloads from the Hugging Face hub;
* :mod:`.files` -- reading ``.safetensors`` / ``.pt`` without running code, strict loading,
  recognising an official architecture from its weights, saving a model with its config;
* :mod:`.hf_layout` -- Hugging Face transformers' key layout to Meta's and back.
"""

from .files import (
    CheckpointError,
    config_path_for,
    infer_official_config,
    load_weights,
    read_state_dict,
    save_model,
    sibling_config,
    to_original_layout,
)
from .hf_layout import ensure_original_layout, hf_to_original, is_hf_layout, original_to_hf
from .hub import (
    CACHE_ENV,
    bundled_names,
    bundled_weights,
    cache_dir,
    hub_location,
    resolve_checkpoint,
    unreachable_hub,
)

__all__ = [
    "CACHE_ENV",
    "CheckpointError",
    "bundled_names",
    "bundled_weights",
    "cache_dir",
    "config_path_for",
    "ensure_original_layout",
    "hf_to_original",
    "hub_location",
    "infer_official_config",
    "is_hf_layout",
    "load_weights",
    "original_to_hf",
    "read_state_dict",
    "resolve_checkpoint",
    "save_model",
    "sibling_config",
    "to_original_layout",
    "unreachable_hub",
]
