"""Write a :class:`Sam2Config` back into Meta's official config layout (the ``model`` mapping).

:func:`official_layout` is the inverse of :func:`sam2_plugins.config.parse_config`:
``parse_config(official_layout(cfg)) == cfg`` for every config. Trained models are saved
as ``<name>.safetensors`` (Meta's key layout) next to ``<name>.config.json`` in this layout,
so :func:`sam2_plugins.load_model` (and Meta's ``build_sam2`` via hydra) can rebuild them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..config import Sam2Config, parse_config

_BASE_KEYS = (
    "num_maskmem", "image_size", "backbone_stride", "sigmoid_scale_for_mem_enc", "sigmoid_bias_for_mem_enc",
    "binarize_mask_from_pts_for_mem_enc", "use_mask_input_as_output_without_sam", "max_cond_frames_in_attn",
    "directly_add_no_mem_embed", "use_high_res_features_in_sam", "multimask_output_in_sam",
    "multimask_min_pt_num", "multimask_max_pt_num", "multimask_output_for_tracking",
    "use_multimask_token_for_obj_ptr", "iou_prediction_use_sigmoid", "memory_temporal_stride_for_eval",
    "non_overlap_masks_for_mem_enc", "use_obj_ptrs_in_encoder", "max_obj_ptrs_in_encoder",
    "add_tpos_enc_to_obj_ptrs", "proj_tpos_enc_in_obj_ptrs", "use_signed_tpos_enc_to_obj_ptrs",
    "only_obj_ptrs_in_the_past_for_eval", "pred_obj_scores", "pred_obj_scores_mlp", "fixed_no_obj_ptr",
    "soft_no_obj_ptr", "use_mlp_for_obj_ptr_proj", "no_obj_embed_spatial",
)


def official_layout(cfg: Sam2Config) -> dict[str, Any]:
    """The ``model`` mapping of an official-style config describing ``cfg`` exactly."""
    c = cfg
    feat = [c.feat_size, c.feat_size]

    def rope_attn(**extra: Any) -> dict[str, Any]:
        return {
            "_target_": "sam2.modeling.sam.transformer.RoPEAttention", "rope_theta": c.mem_attn_rope_theta,
            "feat_sizes": feat, "embedding_dim": c.d_model, "num_heads": c.mem_attn_num_heads,
            "downsample_rate": 1, "dropout": c.mem_attn_dropout, **extra,
        }

    model: dict[str, Any] = {
        "_target_": "sam2.modeling.sam2_base.SAM2Base",
        "image_encoder": {
            "_target_": "sam2.modeling.backbones.image_encoder.ImageEncoder",
            "scalp": c.scalp,
            "trunk": {
                "_target_": "sam2.modeling.backbones.hieradet.Hiera",
                "embed_dim": c.embed_dim, "num_heads": c.num_heads, "stages": list(c.stages),
                "global_att_blocks": list(c.global_att_blocks),
                "window_pos_embed_bkg_spatial_size": list(c.window_pos_embed_bkg_spatial_size),
                "window_spec": list(c.window_spec), "q_pool": c.q_pool, "q_stride": list(c.q_stride),
                "dim_mul": c.dim_mul, "head_mul": c.head_mul,
            },
            "neck": {
                "_target_": "sam2.modeling.backbones.image_encoder.FpnNeck",
                "position_encoding": {
                    "_target_": "sam2.modeling.position_encoding.PositionEmbeddingSine",
                    "num_pos_feats": c.d_model, "normalize": True, "scale": None, "temperature": 10000,
                },
                "d_model": c.d_model, "backbone_channel_list": list(c.backbone_channel_list),
                "fpn_top_down_levels": list(c.fpn_top_down_levels), "fpn_interp_model": c.fpn_interp_model,
            },
        },
        "memory_attention": {
            "_target_": "sam2.modeling.memory_attention.MemoryAttention",
            "d_model": c.d_model, "pos_enc_at_input": True,
            "layer": {
                "_target_": "sam2.modeling.memory_attention.MemoryAttentionLayer",
                "activation": "relu", "dim_feedforward": c.mem_attn_dim_feedforward,
                "dropout": c.mem_attn_dropout, "pos_enc_at_attn": False,
                "self_attention": rope_attn(),
                "d_model": c.d_model, "pos_enc_at_cross_attn_keys": True, "pos_enc_at_cross_attn_queries": False,
                "cross_attention": rope_attn(rope_k_repeat=True, kv_in_dim=c.mem_dim),
            },
            "num_layers": c.mem_attn_layers,
        },
        "memory_encoder": {
            "_target_": "sam2.modeling.memory_encoder.MemoryEncoder",
            "out_dim": c.mem_dim, "in_dim": c.d_model,
            "position_encoding": {
                "_target_": "sam2.modeling.position_encoding.PositionEmbeddingSine",
                "num_pos_feats": c.mem_dim, "normalize": True, "scale": None, "temperature": 10000,
            },
            "mask_downsampler": {
                "_target_": "sam2.modeling.memory_encoder.MaskDownSampler",
                "kernel_size": c.mask_downsampler_kernel, "stride": c.mask_downsampler_stride,
                "padding": c.mask_downsampler_padding, "embed_dim": c.d_model,
            },
            "fuser": {
                "_target_": "sam2.modeling.memory_encoder.Fuser",
                "layer": {
                    "_target_": "sam2.modeling.memory_encoder.CXBlock", "dim": c.d_model,
                    "kernel_size": c.fuser_kernel, "padding": c.fuser_padding,
                    "layer_scale_init_value": 1e-06, "use_dwconv": True,
                },
                "num_layers": c.fuser_layers,
            },
        },
    }
    for key in _BASE_KEYS:
        model[key] = getattr(c, key)
    model["sam_mask_decoder_extra_args"] = {
        "dynamic_multimask_via_stability": c.dynamic_multimask_via_stability,
        "dynamic_multimask_stability_delta": c.dynamic_multimask_stability_delta,
        "dynamic_multimask_stability_thresh": c.dynamic_multimask_stability_thresh,
    }
    model["compile_image_encoder"] = False
    return model


def config_document(cfg: Sam2Config, **extra: Any) -> dict[str, Any]:
    """A whole config file: ``{"model": ..., **extra}`` (extra: provenance such as training info)."""
    doc = {"model": official_layout(cfg)}
    doc.update(extra)
    return doc


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write a file so that readers see either the old or the complete new content."""
    from ..exports import atomic_file

    with atomic_file(path) as tmp:
        tmp.write_bytes(data)


def config_path_for(weights: str | Path) -> Path:
    """``model.safetensors`` -> ``model.config.json`` (the sibling config of a weights file)."""
    weights = Path(weights)
    stem = weights.name[: -len(".safetensors")] if weights.name.endswith(".safetensors") else weights.stem
    return weights.with_name(stem + ".config.json")


def save_model(
    model: torch.nn.Module, out: str | Path, *, dtype: torch.dtype = torch.float32,
    info: Mapping[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Save ``model`` as ``out`` (.safetensors, Meta's keys) and its sibling ``.config.json``.

    Returns (weights path, config path). ``dtype`` may be float16 to halve the file.
    """
    from safetensors.torch import save

    out = Path(out)
    if out.suffix != ".safetensors":
        raise ValueError(f"the output file must end in .safetensors, got {out}")
    state = {k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous()
             for k, v in model.state_dict().items()}
    cfg: Sam2Config = model.config  # type: ignore[assignment]
    doc = config_document(cfg, **({"training": dict(info)} if info else {}))
    cfg_path = config_path_for(out)
    atomic_write_bytes(out, save(state, metadata={"format": "pt"}))
    atomic_write_bytes(cfg_path, (json.dumps(doc, indent=1) + "\n").encode())
    if parse_config(doc) != cfg:  # pragma: no cover - guards the writer against config drift
        raise RuntimeError("internal error: the written config does not describe the model")
    return out, cfg_path
