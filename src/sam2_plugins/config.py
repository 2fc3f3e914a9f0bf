"""Model hyperparameters, read from and written to Meta's official config layout.

An official config (``configs/sam2.1/sam2.1_hiera_t.yaml``) nests its values under
``model`` -> ``image_encoder`` -> ``trunk`` ... ; :func:`parse_config` reads that
layout (YAML file, JSON file or mapping) into a flat, typed :class:`Sam2Config`.
Values an official config leaves out take the official constructors' defaults.
:func:`official_layout` is its inverse (``parse_config(official_layout(cfg)) == cfg`` for every
config), and :func:`write_config` saves a config file in that layout, which
:func:`sam2_plugins.load_model` (and Meta's ``build_sam2`` via hydra) can rebuild.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

__all__ = ["Sam2Config", "parse_config", "official_config", "official_layout", "config_document", "write_config",
           "OFFICIAL_MODEL_NAMES"]


@dataclass(frozen=True)
class Sam2Config:
    """Every hyperparameter that shapes a SAM 2 / 2.1 network and its tracking rules."""

    # Hiera trunk
    embed_dim: int = 96
    num_heads: int = 1
    stages: tuple[int, ...] = (2, 3, 16, 3)
    global_att_blocks: tuple[int, ...] = (12, 16, 20)
    window_pos_embed_bkg_spatial_size: tuple[int, int] = (14, 14)
    window_spec: tuple[int, ...] = (8, 4, 14, 7)
    q_pool: int = 3
    q_stride: tuple[int, int] = (2, 2)
    dim_mul: float = 2.0
    head_mul: float = 2.0
    # FPN neck
    d_model: int = 256
    backbone_channel_list: tuple[int, ...] = (768, 384, 192, 96)
    fpn_top_down_levels: tuple[int, ...] = (2, 3)
    fpn_interp_model: str = "nearest"
    scalp: int = 1
    # memory attention
    mem_attn_layers: int = 4
    mem_attn_dim_feedforward: int = 2048
    mem_attn_num_heads: int = 1
    mem_attn_rope_theta: float = 10000.0
    mem_attn_dropout: float = 0.1
    # memory encoder
    mem_dim: int = 64
    mask_downsampler_kernel: int = 3
    mask_downsampler_stride: int = 2
    mask_downsampler_padding: int = 1
    fuser_layers: int = 2
    fuser_kernel: int = 7
    fuser_padding: int = 3
    # SAM 2 base
    num_maskmem: int = 7
    image_size: int = 1024
    backbone_stride: int = 16
    sigmoid_scale_for_mem_enc: float = 20.0
    sigmoid_bias_for_mem_enc: float = -10.0
    binarize_mask_from_pts_for_mem_enc: bool = True
    use_mask_input_as_output_without_sam: bool = True
    max_cond_frames_in_attn: int = -1
    directly_add_no_mem_embed: bool = True
    use_high_res_features_in_sam: bool = True
    multimask_output_in_sam: bool = True
    multimask_min_pt_num: int = 0
    multimask_max_pt_num: int = 1
    multimask_output_for_tracking: bool = True
    use_multimask_token_for_obj_ptr: bool = True
    iou_prediction_use_sigmoid: bool = True
    memory_temporal_stride_for_eval: int = 1
    non_overlap_masks_for_mem_enc: bool = False
    use_obj_ptrs_in_encoder: bool = True
    max_obj_ptrs_in_encoder: int = 16
    add_tpos_enc_to_obj_ptrs: bool = True
    proj_tpos_enc_in_obj_ptrs: bool = True
    use_signed_tpos_enc_to_obj_ptrs: bool = True
    only_obj_ptrs_in_the_past_for_eval: bool = True
    pred_obj_scores: bool = True
    pred_obj_scores_mlp: bool = True
    fixed_no_obj_ptr: bool = True
    soft_no_obj_ptr: bool = False
    use_mlp_for_obj_ptr_proj: bool = True
    no_obj_embed_spatial: bool = True
    # mask decoder post-processing (what build_sam2(apply_postprocessing=True) sets)
    dynamic_multimask_via_stability: bool = True
    dynamic_multimask_stability_delta: float = 0.05
    dynamic_multimask_stability_thresh: float = 0.98
    # free-form provenance (name of the preset / file it came from)
    name: str = field(default="custom", compare=False)

    @property
    def feat_size(self) -> int:
        """Side of the lowest-resolution feature map (64 for a 1024 model)."""
        return self.image_size // self.backbone_stride

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "Sam2Config":
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown Sam2Config fields: {', '.join(unknown)}")
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**kwargs)


# Defaults of Meta's constructors where an official config is silent.
_HIERA_DEFAULTS = dict(
    embed_dim=96, num_heads=1, stages=(2, 3, 16, 3), global_att_blocks=(12, 16, 20),
    window_pos_embed_bkg_spatial_size=(14, 14), window_spec=(8, 4, 14, 7), q_pool=3,
    q_stride=(2, 2), dim_mul=2.0, head_mul=2.0,
)
_BASE_DEFAULTS = dict(
    num_maskmem=7, image_size=512, backbone_stride=16, sigmoid_scale_for_mem_enc=1.0,
    sigmoid_bias_for_mem_enc=0.0, use_mask_input_as_output_without_sam=False,
    max_cond_frames_in_attn=-1, directly_add_no_mem_embed=False,
    use_high_res_features_in_sam=False, multimask_output_in_sam=False, multimask_min_pt_num=1,
    multimask_max_pt_num=1, multimask_output_for_tracking=False,
    use_multimask_token_for_obj_ptr=False, iou_prediction_use_sigmoid=False,
    memory_temporal_stride_for_eval=1, non_overlap_masks_for_mem_enc=False,
    use_obj_ptrs_in_encoder=False, max_obj_ptrs_in_encoder=16, add_tpos_enc_to_obj_ptrs=True,
    proj_tpos_enc_in_obj_ptrs=False, use_signed_tpos_enc_to_obj_ptrs=False,
    only_obj_ptrs_in_the_past_for_eval=False, pred_obj_scores=False, pred_obj_scores_mlp=False,
    fixed_no_obj_ptr=False, soft_no_obj_ptr=False, use_mlp_for_obj_ptr_proj=False,
    no_obj_embed_spatial=False,
)


def _get(mapping: Mapping[str, Any], *path: str, default: Any = None) -> Any:
    node: Any = mapping
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return default
        node = node[key]
    return node


def _from_official_model(model: Mapping[str, Any], name: str) -> Sam2Config:
    trunk = _get(model, "image_encoder", "trunk", default={})
    neck = _get(model, "image_encoder", "neck", default={})
    layer = _get(model, "memory_attention", "layer", default={})
    mem_enc = model.get("memory_encoder", {})
    values: dict[str, Any] = {}
    for key, default in _HIERA_DEFAULTS.items():
        values[key] = trunk.get(key, default)
    values.update(
        d_model=neck.get("d_model", 256),
        backbone_channel_list=neck["backbone_channel_list"] if "backbone_channel_list" in neck
        else None,
        fpn_top_down_levels=neck.get("fpn_top_down_levels", (2, 3)),
        fpn_interp_model=neck.get("fpn_interp_model", "bilinear"),
        scalp=_get(model, "image_encoder", "scalp", default=0),
        mem_attn_layers=_get(model, "memory_attention", "num_layers", default=4),
        mem_attn_dim_feedforward=layer.get("dim_feedforward", 2048),
        mem_attn_num_heads=_get(layer, "self_attention", "num_heads", default=1),
        mem_attn_rope_theta=_get(layer, "self_attention", "rope_theta", default=10000.0),
        mem_attn_dropout=layer.get("dropout", 0.1),
        mem_dim=mem_enc.get("out_dim", 64),
        mask_downsampler_kernel=_get(mem_enc, "mask_downsampler", "kernel_size", default=3),
        mask_downsampler_stride=_get(mem_enc, "mask_downsampler", "stride", default=2),
        mask_downsampler_padding=_get(mem_enc, "mask_downsampler", "padding", default=1),
        fuser_layers=_get(mem_enc, "fuser", "num_layers", default=2),
        fuser_kernel=_get(mem_enc, "fuser", "layer", "kernel_size", default=7),
        fuser_padding=_get(mem_enc, "fuser", "layer", "padding", default=3),
    )
    if values["backbone_channel_list"] is None:
        values.pop("backbone_channel_list")
    for key, default in _BASE_DEFAULTS.items():
        values[key] = model.get(key, default)
    extra = model.get("sam_mask_decoder_extra_args") or {}
    # build_sam2(..., apply_postprocessing=True) switches these on; configs may override.
    values.update(
        dynamic_multimask_via_stability=extra.get("dynamic_multimask_via_stability", True),
        dynamic_multimask_stability_delta=extra.get("dynamic_multimask_stability_delta", 0.05),
        dynamic_multimask_stability_thresh=extra.get("dynamic_multimask_stability_thresh", 0.98),
        binarize_mask_from_pts_for_mem_enc=model.get("binarize_mask_from_pts_for_mem_enc", True),
        name=name,
    )
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return Sam2Config(**values)


def parse_config(source: "str | Path | Mapping[str, Any] | Sam2Config") -> Sam2Config:
    """Read an official-style config: a YAML/JSON path, a mapping, or a Sam2Config.

    A mapping may be the whole config (with a ``model`` key) or the ``model`` mapping itself.
    """
    if isinstance(source, Sam2Config):
        return source
    name = "custom"
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        text = path.read_text()
        try:
            if path.suffix.lower() in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(text)
            else:
                data = json.loads(text)
        except Exception as err:  # noqa: BLE001 - report any parse error the same way
            raise ValueError(f"cannot parse config file {path}: {err}") from None
        name = path.stem.replace(".config", "")
    else:
        data = source
    if not isinstance(data, Mapping):
        raise ValueError(f"a SAM 2 config must be a mapping, got {type(data).__name__}")
    model = data.get("model", data)
    if not isinstance(model, Mapping) or "image_encoder" not in model:
        raise ValueError(
            "config has no 'image_encoder' section: expected Meta's SAM 2 config layout "
            "(model -> image_encoder -> trunk/neck, memory_attention, memory_encoder)"
        )
    return _from_official_model(model, name)


OFFICIAL_MODEL_NAMES = {
    "sam2.1-hiera-tiny": "sam2.1_hiera_tiny",
    "sam2.1-hiera-small": "sam2.1_hiera_small",
    "sam2.1-hiera-base-plus": "sam2.1_hiera_base_plus",
    "sam2.1-hiera-large": "sam2.1_hiera_large",
    "sam2-hiera-tiny": "sam2_hiera_tiny",
    "sam2-hiera-small": "sam2_hiera_small",
    "sam2-hiera-base-plus": "sam2_hiera_base_plus",
    "sam2-hiera-large": "sam2_hiera_large",
}


def official_config(name: str) -> Sam2Config:
    """The resolved config of an official model, by hub name (``sam2.1-hiera-tiny``)."""
    key = OFFICIAL_MODEL_NAMES.get(name, name)
    table = json.loads(
        resources.files("sam2_plugins.configs").joinpath("official_models.json").read_text()
    )
    if key not in table:
        raise ValueError(
            f"unknown model name {name!r}; known: {', '.join(OFFICIAL_MODEL_NAMES)}"
        )
    return _from_official_model(table[key], name)


# ----------------------------------------------------------------------------------------------
# Writing: the official layout of a config
# ----------------------------------------------------------------------------------------------

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


def write_config(cfg: Sam2Config, path: "str | Path", **extra: Any) -> Path:
    """Write ``cfg`` as a JSON config file in the official layout (``extra``: top-level entries
    such as a ``training`` record), atomically: readers see the old file or the whole new one."""
    from .exports import atomic_file

    path = Path(path)
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(config_document(cfg, **extra), indent=1) + "\n")
    return path
