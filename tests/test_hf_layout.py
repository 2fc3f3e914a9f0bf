"""Conversion between the Hugging Face transformers SAM 2 layout and Meta's layout (no transformers needed).

tests/data/micro_hf_layout.safetensors was produced by tests/data/make_hf_layout_fixture.py and checked
there against transformers (strict load into Sam2VideoModel).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sam2_plugins.checkpoints.hf_layout import ensure_original_layout, hf_to_original, is_hf_layout, original_to_hf

DATA = Path(__file__).parent / "data"
MICRO_META = DATA / "micro_reference.safetensors"
MICRO_HF = DATA / "micro_hf_layout.safetensors"
LAYOUTS = DATA / "official_layouts"
OFFICIAL = sorted(p.name.removesuffix(".keys.json") for p in LAYOUTS.glob("*.keys.json"))


@pytest.fixture(scope="module")
def micro_meta() -> dict[str, torch.Tensor]:
    return load_file(MICRO_META)


@pytest.fixture(scope="module")
def micro_hf() -> dict[str, torch.Tensor]:
    return load_file(MICRO_HF)


def _official_shapes(name: str) -> dict[str, tuple[int, ...]]:
    data = json.loads((LAYOUTS / f"{name}.keys.json").read_text())
    return {k: tuple(s) for k, s in data["state_dict"].items()}


def _random_state_dict(shapes: dict[str, tuple[int, ...]], seed: int = 0, full: bool = True) -> dict[str, torch.Tensor]:
    """Random tensors of the given shapes; ``full=False`` gives each key one random value broadcast to its
    shape (a zero-copy view), which is enough to tell keys apart and keeps the large models cheap."""
    g = torch.Generator().manual_seed(seed)
    if full:
        return {k: torch.randn(s, generator=g) for k, s in shapes.items()}
    return {k: torch.randn((), generator=g).expand(s) for k, s in shapes.items()}


def _assert_identical(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert set(actual) == set(expected), sorted(set(actual) ^ set(expected))
    for k, v in expected.items():
        a = actual[k]
        assert a.dtype == v.dtype and a.shape == v.shape, (k, a.dtype, v.dtype, a.shape, v.shape)
        assert a is v or torch.equal(a, v), k  # passing the very same tensor through is fine


def test_is_hf_layout_tells_layouts_apart(micro_meta, micro_hf):
    assert is_hf_layout(micro_hf.keys())
    assert is_hf_layout(micro_hf)  # a state_dict iterates over its keys
    assert not is_hf_layout(micro_meta.keys())
    for name in OFFICIAL:
        shapes = _official_shapes(name)
        assert not is_hf_layout(shapes.keys()), name
        hf = original_to_hf(_random_state_dict(shapes, full=False))
        assert is_hf_layout(hf.keys()), name
    assert not is_hf_layout([])
    # keys spelled the same in both layouts decide nothing on their own
    assert not is_hf_layout(["memory_attention.layers.0.self_attn.q_proj.weight"])
    # a mixture is not the transformers layout
    assert not is_hf_layout(list(micro_hf) + ["sam_mask_decoder.iou_token.weight"])


def test_hf_fixture_converts_to_micro_weights_bit_identical(micro_meta, micro_hf):
    _assert_identical(hf_to_original(micro_hf), micro_meta)


def test_micro_weights_convert_to_hf_fixture_bit_identical(micro_meta, micro_hf):
    _assert_identical(original_to_hf(micro_meta), micro_hf)


def test_ensure_original_layout(micro_meta, micro_hf):
    _assert_identical(ensure_original_layout(micro_hf), micro_meta)
    _assert_identical(ensure_original_layout(micro_meta), micro_meta)


@pytest.mark.parametrize("name", OFFICIAL)
def test_round_trip_is_identity_on_official_layouts(name):
    shapes = _official_shapes(name)
    original = _random_state_dict(shapes, full=name == "sam2.1_hiera_tiny")
    hf = original_to_hf(original)
    assert is_hf_layout(hf) and not is_hf_layout(original)
    # Meta's four (1, C) point embeddings are one (4, C) tensor; the gaussian matrix is stored twice.
    assert len(hf) == len(original) - 4 + 1 + 1
    assert hf["prompt_encoder.point_embed.weight"].shape == (4, shapes["sam_prompt_encoder.point_embeddings.0.weight"][1])
    _assert_identical(hf_to_original(hf), original)


def test_round_trip_sam21_tiny_names():
    """Spot-check names and the 2.1-only parameters on sam2.1_hiera_tiny."""
    hf = original_to_hf(_random_state_dict(_official_shapes("sam2.1_hiera_tiny"), full=False))
    for key in (
        "vision_encoder.backbone.blocks.0.attn.qkv.weight",
        "vision_encoder.neck.convs.0.weight",
        "mask_decoder.transformer.layers.0.self_attn.o_proj.weight",
        "mask_decoder.iou_prediction_head.proj_out.weight",
        "memory_encoder.mask_downsampler.final_conv.weight",
        "memory_encoder.memory_fuser.layers.0.scale",
        "object_pointer_proj.layers.0.weight",
        "occlusion_spatial_embedding_parameter",
        "temporal_positional_encoding_projection_layer.weight",
        "shared_image_embedding.positional_embedding",
    ):
        assert key in hf, key


def test_sam20_has_no_21_only_parameters():
    hf = original_to_hf(_random_state_dict(_official_shapes("sam2_hiera_tiny"), full=False))
    assert "occlusion_spatial_embedding_parameter" not in hf
    assert not any(k.startswith("temporal_positional_encoding_projection_layer.") for k in hf)


def test_point_embeddings_are_rows_of_point_embed(micro_meta, micro_hf):
    merged = micro_hf["prompt_encoder.point_embed.weight"]
    for n in range(4):
        assert torch.equal(merged[n : n + 1], micro_meta[f"sam_prompt_encoder.point_embeddings.{n}.weight"])


def test_derived_buffers_are_dropped(micro_meta, micro_hf):
    sd = dict(micro_hf)
    sd["memory_attention.rotary_emb.inv_freq"] = torch.ones(4)
    sd["memory_attention.position_ids"] = torch.zeros(256, 2, dtype=torch.long)
    _assert_identical(hf_to_original(sd), micro_meta)


def test_single_gaussian_copy_is_enough(micro_meta, micro_hf):
    sd = dict(micro_hf)
    del sd["shared_image_embedding.positional_embedding"]
    _assert_identical(hf_to_original(sd), micro_meta)


def test_differing_gaussian_copies_raise(micro_hf):
    sd = dict(micro_hf)
    sd["shared_image_embedding.positional_embedding"] = sd["shared_image_embedding.positional_embedding"] + 1
    with pytest.raises(ValueError, match="differ"):
        hf_to_original(sd)


def test_image_only_model_subset_converts(micro_meta, micro_hf):
    """A transformers Sam2Model (image only) state_dict has no memory modules: its keys map to a subset."""
    memory = ("memory_", "mask_downsample.", "object_pointer_proj.", "temporal_positional_encoding_projection_layer.")
    memory_params = ("no_memory_positional_encoding", "no_object_pointer", "occlusion_spatial_embedding_parameter")
    sd = {k: v for k, v in micro_hf.items() if not k.startswith(memory) and k not in memory_params}
    assert is_hf_layout(sd)
    out = hf_to_original(sd)
    assert set(out) < set(micro_meta)
    for k, v in out.items():
        assert torch.equal(v, micro_meta[k]), k


def test_unknown_hf_key_raises_naming_it(micro_hf):
    sd = dict(micro_hf)
    sd["mask_decoder.some_new_head.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"mask_decoder\.some_new_head\.weight"):
        hf_to_original(sd)


def test_unknown_meta_key_raises_naming_it(micro_meta):
    sd = dict(micro_meta)
    sd["sam_mask_decoder.some_new_head.weight"] = torch.zeros(1)
    sd["image_encoder.trunk.blocks.0.attn.rel_pos_h"] = torch.zeros(1)
    with pytest.raises(ValueError) as err:
        original_to_hf(sd)
    assert "sam_mask_decoder.some_new_head.weight" in str(err.value)
    assert "image_encoder.trunk.blocks.0.attn.rel_pos_h" in str(err.value)


def test_prefixed_keys_are_unknown(micro_hf):
    """Keys under a wrapper prefix are not silently accepted."""
    with pytest.raises(ValueError, match=r"model\.vision_encoder"):
        hf_to_original({f"model.{k}": v for k, v in micro_hf.items()})
