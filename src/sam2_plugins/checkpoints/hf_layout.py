"""Convert SAM 2 / SAM 2.1 state_dicts between the Hugging Face transformers layout and Meta's layout.

Meta's checkpoints (``sam2.1_hiera_tiny.pt`` etc., state_dict under the key ``"model"``) and the
transformers classes ``Sam2VideoModel`` / ``Sam2Model`` (``facebook/sam2.1-hiera-*`` repositories in
transformers format, ``model.safetensors``) hold the same parameters under different names:

* module renames: ``image_encoder.trunk`` -> ``vision_encoder.backbone``, ``sam_prompt_encoder`` ->
  ``prompt_encoder``, ``sam_mask_decoder`` -> ``mask_decoder``, ``norm*`` -> ``layer_norm*``,
  ``out_proj`` -> ``o_proj``, ``nn.Sequential`` indices -> named sub-modules, 3-layer MLPs
  ``layers.0/1/2`` -> ``proj_in / layers.0 / proj_out``, ...
* one tensor re-layout: Meta's four ``sam_prompt_encoder.point_embeddings.{0..3}.weight`` (each
  ``(1, C)``) are the rows of transformers' single ``prompt_encoder.point_embed.weight`` ``(4, C)``.
* one duplicated buffer: Meta's ``sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix``
  is stored twice by transformers (``prompt_encoder.shared_embedding.positional_embedding`` and
  ``shared_image_embedding.positional_embedding``); both copies must be equal.
* buffers that transformers can recompute (rotary tables of the memory attention) are dropped when
  present; they are not saved by ``save_pretrained`` anyway.

No tensor is transposed or reshaped otherwise: the Hiera ``qkv`` projections are fused in both layouts
with the same q/k/v order, and every other tensor keeps its shape, dtype and values bit for bit.

SAM 2.0 checkpoints simply lack ``no_obj_embed_spatial`` and ``obj_ptr_tpos_proj.*`` (transformers:
``occlusion_spatial_embedding_parameter`` and ``temporal_positional_encoding_projection_layer.*``,
i.e. ``enable_occlusion_spatial_embedding`` / ``enable_temporal_pos_encoding_for_object_pointers``
false); the mapping itself is the same for 2.0 and 2.1.

The mapping was verified against transformers 5.23.0 (and the key set of 4.56.0, the first release
with SAM 2, is identical): strict loading for all eight official model shapes, and, with the micro test
model, transformers' image and video predictions reproduce Meta's reference logits. This module does not
import transformers.

Note that the converted tensors are the input tensors (no copy) except the merged/split point
embeddings and the duplicated gaussian matrix. transformers hard-codes 64 input channels for the
memory cross-attention keys/values (``kv_in_dim=64``), as in every official model; a custom model
with another memory width converts fine but needs that patched to load into transformers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import torch

__all__ = ["is_hf_layout", "hf_to_original", "original_to_hf", "ensure_original_layout"]

# ----------------------------------------------------------------------------------------------
# Rule table: (Meta template, transformers template). Placeholders: {i} an index, {p} weight|bias.
# ----------------------------------------------------------------------------------------------

_PLACEHOLDERS = {"i": r"(?P<i>\d+)", "p": r"(?P<p>weight|bias)"}


def _mlp3(meta_prefix: str, hf_prefix: str) -> list[tuple[str, str]]:
    """Meta ``MLP`` with 3 linear layers vs transformers ``FeedForward`` (proj_in, layers.0, proj_out)."""
    return [
        (f"{meta_prefix}.layers.0.{{p}}", f"{hf_prefix}.proj_in.{{p}}"),
        (f"{meta_prefix}.layers.1.{{p}}", f"{hf_prefix}.layers.0.{{p}}"),
        (f"{meta_prefix}.layers.2.{{p}}", f"{hf_prefix}.proj_out.{{p}}"),
    ]


def _mlp2(meta_prefix: str, hf_prefix: str) -> list[tuple[str, str]]:
    """Meta ``MLP`` with 2 linear layers vs transformers ``FeedForward`` (proj_in, proj_out)."""
    return [
        (f"{meta_prefix}.layers.0.{{p}}", f"{hf_prefix}.proj_in.{{p}}"),
        (f"{meta_prefix}.layers.1.{{p}}", f"{hf_prefix}.proj_out.{{p}}"),
    ]


def _attention(meta_prefix: str, hf_prefix: str) -> list[tuple[str, str]]:
    rules = [(f"{meta_prefix}.{n}_proj.{{p}}", f"{hf_prefix}.{n}_proj.{{p}}") for n in ("q", "k", "v")]
    rules.append((f"{meta_prefix}.out_proj.{{p}}", f"{hf_prefix}.o_proj.{{p}}"))
    return rules


def _same(*names: str) -> list[tuple[str, str]]:
    return [(n, n) for n in names]


def _build_rules() -> list[tuple[str, str]]:
    r: list[tuple[str, str]] = []

    # --- image encoder: Hiera trunk + FPN neck ------------------------------------------------
    t, ht = "image_encoder.trunk", "vision_encoder.backbone"
    r += [
        (f"{t}.pos_embed", f"{ht}.pos_embed"),
        (f"{t}.pos_embed_window", f"{ht}.pos_embed_window"),
        (f"{t}.patch_embed.proj.{{p}}", f"{ht}.patch_embed.projection.{{p}}"),
        (f"{t}.blocks.{{i}}.norm1.{{p}}", f"{ht}.blocks.{{i}}.layer_norm1.{{p}}"),
        (f"{t}.blocks.{{i}}.norm2.{{p}}", f"{ht}.blocks.{{i}}.layer_norm2.{{p}}"),
        (f"{t}.blocks.{{i}}.attn.qkv.{{p}}", f"{ht}.blocks.{{i}}.attn.qkv.{{p}}"),
        (f"{t}.blocks.{{i}}.attn.proj.{{p}}", f"{ht}.blocks.{{i}}.attn.proj.{{p}}"),
        (f"{t}.blocks.{{i}}.proj.{{p}}", f"{ht}.blocks.{{i}}.proj.{{p}}"),
        ("image_encoder.neck.convs.{i}.conv.{p}", "vision_encoder.neck.convs.{i}.{p}"),
    ]
    r += _mlp2(f"{t}.blocks.{{i}}.mlp", f"{ht}.blocks.{{i}}.mlp")

    # --- prompt encoder (point_embeddings.N are handled separately: merged into one tensor) -----
    pe, hpe = "sam_prompt_encoder", "prompt_encoder"
    r += [
        (f"{pe}.pe_layer.positional_encoding_gaussian_matrix", f"{hpe}.shared_embedding.positional_embedding"),
        (f"{pe}.not_a_point_embed.weight", f"{hpe}.not_a_point_embed.weight"),
        (f"{pe}.no_mask_embed.weight", f"{hpe}.no_mask_embed.weight"),
        (f"{pe}.mask_downscaling.0.{{p}}", f"{hpe}.mask_embed.conv1.{{p}}"),
        (f"{pe}.mask_downscaling.1.{{p}}", f"{hpe}.mask_embed.layer_norm1.{{p}}"),
        (f"{pe}.mask_downscaling.3.{{p}}", f"{hpe}.mask_embed.conv2.{{p}}"),
        (f"{pe}.mask_downscaling.4.{{p}}", f"{hpe}.mask_embed.layer_norm2.{{p}}"),
        (f"{pe}.mask_downscaling.6.{{p}}", f"{hpe}.mask_embed.conv3.{{p}}"),
    ]

    # --- mask decoder -----------------------------------------------------------------------
    md, hmd = "sam_mask_decoder", "mask_decoder"
    r += [(f"{md}.{n}.weight", f"{hmd}.{n}.weight") for n in ("iou_token", "mask_tokens", "obj_score_token")]
    r += [(f"{md}.{n}.{{p}}", f"{hmd}.{n}.{{p}}") for n in ("conv_s0", "conv_s1")]
    r += [
        (f"{md}.output_upscaling.0.{{p}}", f"{hmd}.upscale_conv1.{{p}}"),
        (f"{md}.output_upscaling.1.{{p}}", f"{hmd}.upscale_layer_norm.{{p}}"),
        (f"{md}.output_upscaling.3.{{p}}", f"{hmd}.upscale_conv2.{{p}}"),
    ]
    r += _mlp3(f"{md}.output_hypernetworks_mlps.{{i}}", f"{hmd}.output_hypernetworks_mlps.{{i}}")
    r += _mlp3(f"{md}.iou_prediction_head", f"{hmd}.iou_prediction_head")
    r += _mlp3(f"{md}.pred_obj_score_head", f"{hmd}.pred_obj_score_head")
    tl, htl = f"{md}.transformer.layers.{{i}}", f"{hmd}.transformer.layers.{{i}}"
    for att in ("self_attn", "cross_attn_token_to_image", "cross_attn_image_to_token"):
        r += _attention(f"{tl}.{att}", f"{htl}.{att}")
    r += [(f"{tl}.norm{n}.{{p}}", f"{htl}.layer_norm{n}.{{p}}") for n in (1, 2, 3, 4)]
    r += _mlp2(f"{tl}.mlp", f"{htl}.mlp")
    r += _attention(f"{md}.transformer.final_attn_token_to_image", f"{hmd}.transformer.final_attn_token_to_image")
    r += [(f"{md}.transformer.norm_final_attn.{{p}}", f"{hmd}.transformer.layer_norm_final_attn.{{p}}")]

    # --- memory attention -------------------------------------------------------------------
    ml = "memory_attention.layers.{i}"
    for att in ("self_attn", "cross_attn_image"):
        r += _attention(f"{ml}.{att}", f"{ml}.{att}")
    r += [(f"{ml}.{n}.{{p}}", f"{ml}.{n}.{{p}}") for n in ("linear1", "linear2")]
    r += [(f"{ml}.norm{n}.{{p}}", f"{ml}.layer_norm{n}.{{p}}") for n in (1, 2, 3)]
    r += [("memory_attention.norm.{p}", "memory_attention.layer_norm.{p}")]

    # --- memory encoder (mask_downsampler.encoder.N is handled separately: its last index depends
    #     on the number of down-sampling layers) ------------------------------------------------
    me = "memory_encoder"
    r += [
        (f"{me}.pix_feat_proj.{{p}}", f"{me}.feature_projection.{{p}}"),
        (f"{me}.out_proj.{{p}}", f"{me}.projection.{{p}}"),
        (f"{me}.fuser.layers.{{i}}.dwconv.{{p}}", f"{me}.memory_fuser.layers.{{i}}.depthwise_conv.{{p}}"),
        (f"{me}.fuser.layers.{{i}}.norm.{{p}}", f"{me}.memory_fuser.layers.{{i}}.layer_norm.{{p}}"),
        (f"{me}.fuser.layers.{{i}}.pwconv1.{{p}}", f"{me}.memory_fuser.layers.{{i}}.pointwise_conv1.{{p}}"),
        (f"{me}.fuser.layers.{{i}}.pwconv2.{{p}}", f"{me}.memory_fuser.layers.{{i}}.pointwise_conv2.{{p}}"),
        (f"{me}.fuser.layers.{{i}}.gamma", f"{me}.memory_fuser.layers.{{i}}.scale"),
    ]

    # --- top-level parameters of SAM2Base / Sam2VideoModel ---------------------------------------
    r += [
        ("no_mem_embed", "no_memory_embedding"),
        ("no_mem_pos_enc", "no_memory_positional_encoding"),
        ("maskmem_tpos_enc", "memory_temporal_positional_encoding"),
        ("no_obj_ptr", "no_object_pointer"),
        ("no_obj_embed_spatial", "occlusion_spatial_embedding_parameter"),  # SAM 2.1 only
        ("mask_downsample.{p}", "mask_downsample.{p}"),
        ("obj_ptr_tpos_proj.{p}", "temporal_positional_encoding_projection_layer.{p}"),  # SAM 2.1 only
    ]
    r += _mlp3("obj_ptr_proj", "object_pointer_proj")
    return r


def _compile(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[a-z]\})", template)
    rx = "".join(_PLACEHOLDERS[p[1]] if re.fullmatch(r"\{[a-z]\}", p) else re.escape(p) for p in parts)
    return re.compile(rx + r"\Z")


_RULES = [(meta, hf, _compile(meta), _compile(hf)) for meta, hf in _build_rules()]

# Keys that need a whole-state_dict view.
_META_POINT_EMB = re.compile(r"sam_prompt_encoder\.point_embeddings\.(\d+)\.weight\Z")
_HF_POINT_EMB = "prompt_encoder.point_embed.weight"
_META_GAUSSIAN = "sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"
_HF_GAUSSIAN = "prompt_encoder.shared_embedding.positional_embedding"
_HF_GAUSSIAN_COPY = "shared_image_embedding.positional_embedding"
_META_MASK_DS = re.compile(r"memory_encoder\.mask_downsampler\.encoder\.(\d+)\.(weight|bias)\Z")
_HF_MASK_DS = re.compile(r"memory_encoder\.mask_downsampler\.(?:layers\.(\d+)\.(conv|layer_norm)|final_conv)\.(weight|bias)\Z")
# Non-persistent buffers of the transformers memory attention (rotary tables, position ids):
# recomputed from the config, never part of Meta's checkpoints; dropped if someone saved them.
_HF_DERIVED_BUFFERS = re.compile(
    r"memory_attention\.(?:position_ids"
    r"|rotary_emb\.(?:inv_freq|original_inv_freq|rope_embeddings_cos|rope_embeddings_sin))\Z"
)
# Meta's MaskDownSampler is a Sequential of [conv, LayerNorm2d, GELU] * n + final 1x1 conv.
_DEFAULT_MASK_DS_LAYERS = 4  # total_stride 16 / stride 2 in every official config


def _map_key(key: str, to_hf: bool) -> str | None:
    for meta_t, hf_t, meta_rx, hf_rx in _RULES:
        m = (meta_rx if to_hf else hf_rx).match(key)
        if m is not None:
            return (hf_t if to_hf else meta_t).format(**m.groupdict())
    return None


def _is_meta_key(key: str) -> bool:
    return bool(_map_key(key, to_hf=True) or _META_POINT_EMB.match(key) or _META_MASK_DS.match(key))


def _is_hf_key(key: str) -> bool:
    return bool(
        _map_key(key, to_hf=False)
        or key in (_HF_POINT_EMB, _HF_GAUSSIAN_COPY)
        or _HF_MASK_DS.match(key)
        or _HF_DERIVED_BUFFERS.match(key)
    )


def is_hf_layout(state_dict_keys: Iterable[str]) -> bool:
    """True if the keys are those of a transformers ``Sam2VideoModel`` / ``Sam2Model`` state_dict.

    Accepts any iterable of key names (a state_dict itself works). A key set is in the transformers
    layout when at least one key exists only in that layout and none exists only in Meta's layout
    (many memory-attention keys are spelled the same in both).
    """
    hf_only = meta_only = False
    for key in state_dict_keys:
        is_hf, is_meta = _is_hf_key(key), _is_meta_key(key)
        hf_only |= is_hf and not is_meta
        meta_only |= is_meta and not is_hf
    return hf_only and not meta_only


def _raise_unknown(unknown: list[str], layout: str) -> None:
    if unknown:
        shown = ", ".join(repr(k) for k in sorted(unknown))
        raise ValueError(f"{len(unknown)} key(s) not recognised as SAM 2 {layout}-layout parameters: {shown}")


def _put(out: dict[str, torch.Tensor], key: str, value: torch.Tensor, source: str) -> None:
    if key in out:
        raise ValueError(f"two keys map to {key!r} (second one: {source!r})")
    out[key] = value


def _same_tensor_values(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b.to(a.device))


def hf_to_original(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Convert a transformers-layout SAM 2 state_dict to Meta's layout.

    Works for ``Sam2VideoModel`` (all parameters) and ``Sam2Model`` (image-only subset) state_dicts.
    Raises ``ValueError`` listing every key it does not recognise.
    """
    out: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    mask_ds: list[tuple[str, re.Match[str]]] = []
    gaussians: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if _HF_DERIVED_BUFFERS.match(key):
            continue
        if key in (_HF_GAUSSIAN, _HF_GAUSSIAN_COPY):
            gaussians[key] = value
            continue
        if key == _HF_POINT_EMB:
            if value.dim() != 2:
                raise ValueError(f"{key!r} must be 2-D (num_point_embeddings, C), got shape {tuple(value.shape)}")
            for n in range(value.shape[0]):
                _put(out, f"sam_prompt_encoder.point_embeddings.{n}.weight", value[n : n + 1].clone(), key)
            continue
        m = _HF_MASK_DS.match(key)
        if m is not None:
            mask_ds.append((key, m))
            continue
        new = _map_key(key, to_hf=False)
        if new is None:
            unknown.append(key)
        else:
            _put(out, new, value, key)
    _raise_unknown(unknown, "transformers")

    if gaussians:
        values = list(gaussians.values())
        comparable = all(v.device.type != "meta" for v in values)  # shape-only dicts cannot be compared
        if len(values) == 2 and comparable and not _same_tensor_values(values[0], values[1]):
            raise ValueError(
                f"{_HF_GAUSSIAN!r} and {_HF_GAUSSIAN_COPY!r} differ; Meta's model has a single "
                "positional_encoding_gaussian_matrix shared by prompts and image positions"
            )
        _put(out, _META_GAUSSIAN, gaussians.get(_HF_GAUSSIAN, values[0]), _HF_GAUSSIAN)

    if mask_ds:
        layer_ids = [int(m.group(1)) for _, m in mask_ds if m.group(1) is not None]
        n_layers = max(layer_ids) + 1 if layer_ids else _DEFAULT_MASK_DS_LAYERS
        for key, m in mask_ds:
            if m.group(1) is None:  # final_conv
                idx = 3 * n_layers
            else:
                idx = 3 * int(m.group(1)) + (0 if m.group(2) == "conv" else 1)
            _put(out, f"memory_encoder.mask_downsampler.encoder.{idx}.{m.group(3)}", state_dict[key], key)
    return out


def original_to_hf(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Convert a Meta-layout SAM 2 state_dict (``torch.load(ckpt)["model"]``) to the transformers layout.

    The result loads with strict key matching into a ``Sam2VideoModel`` of the matching config (for a
    ``Sam2Model`` the memory-related keys are extra; transformers ignores them on ``from_pretrained``).
    Raises ``ValueError`` listing every key it does not recognise.
    """
    out: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    points: dict[int, torch.Tensor] = {}
    mask_ds: list[tuple[str, int, str]] = []
    for key, value in state_dict.items():
        m = _META_POINT_EMB.match(key)
        if m is not None:
            points[int(m.group(1))] = value
            continue
        m = _META_MASK_DS.match(key)
        if m is not None:
            mask_ds.append((key, int(m.group(1)), m.group(2)))
            continue
        new = _map_key(key, to_hf=True)
        if new is None:
            unknown.append(key)
        else:
            _put(out, new, value, key)
            if key == _META_GAUSSIAN:
                # transformers keeps a second, identical copy for the image-wide positional encoding
                _put(out, _HF_GAUSSIAN_COPY, value.clone(), key)

    if mask_ds:
        final_idx = max(idx for _, idx, _ in mask_ds)
        if final_idx % 3 != 0:
            unknown += [k for k, _, _ in mask_ds]
        else:
            for key, idx, param in mask_ds:
                if idx == final_idx:
                    new = f"memory_encoder.mask_downsampler.final_conv.{param}"
                elif idx % 3 == 0:
                    new = f"memory_encoder.mask_downsampler.layers.{idx // 3}.conv.{param}"
                elif idx % 3 == 1:
                    new = f"memory_encoder.mask_downsampler.layers.{idx // 3}.layer_norm.{param}"
                else:  # index of a GELU: has no parameters
                    unknown.append(key)
                    continue
                _put(out, new, state_dict[key], key)
    _raise_unknown(unknown, "Meta")

    if points:
        if sorted(points) != list(range(len(points))):
            raise ValueError(f"sam_prompt_encoder.point_embeddings indices must be 0..N-1, got {sorted(points)}")
        rows = [points[n] for n in range(len(points))]
        for n, row in enumerate(rows):
            if row.dim() != 2 or row.shape[0] != 1:
                raise ValueError(
                    f"sam_prompt_encoder.point_embeddings.{n}.weight must have shape (1, C), got {tuple(row.shape)}"
                )
        out[_HF_POINT_EMB] = torch.cat(rows, dim=0)
    return out


def ensure_original_layout(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Return the state_dict in Meta's layout, converting it if it is in the transformers layout."""
    if is_hf_layout(state_dict.keys()):
        return hf_to_original(state_dict)
    return dict(state_dict)
