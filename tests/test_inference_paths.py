"""Inference-only shortcuts compute what the training path computes (training keeps its own
arithmetic, so the recipe's weights stay reproducible)."""

import pytest
import torch

from sam2_plugins.model import common, transformer


def test_folded_high_res_features_equal_the_neck_then_the_decoder_convolutions(micro_model):
    torch.manual_seed(0)
    size = micro_model.image_size
    for pixels in (torch.randn(1, 3, size, size),
                   torch.randn(1, 3, size, size).contiguous(memory_format=torch.channels_last)):
        with torch.no_grad():  # inference: the decoder's 1x1 convolutions folded into the neck's
            folded = micro_model.network.encode_image(pixels)
        with torch.enable_grad():  # the training path: neck, then the decoder's convolutions
            unfolded = micro_model.network.encode_image(pixels)
        assert torch.equal(folded.embed, unfolded.embed.detach())
        assert torch.equal(folded.pos, unfolded.pos.detach())
        assert len(folded.high_res) == len(unfolded.high_res) == 2
        for got, want in zip(folded.high_res, unfolded.high_res):
            assert got.shape == want.shape
            torch.testing.assert_close(got, want.detach(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rope_in_inference_rotates_as_in_training_and_leaves_its_input_alone(dtype):
    rotations = common.axial_rope_angles(32, 8, 8, 10000.0)  # (64 tokens, 16 pairs)
    torch.manual_seed(0)
    keys = torch.randn(1, 3 * 64, 2, 32).to(dtype).transpose(1, 2)  # (B, heads, 3 frames x 64, d), a view
    before = keys.clone()
    with torch.enable_grad():
        trained = common.apply_rope(keys, rotations)
    with torch.inference_mode():
        inferred = common.apply_rope(keys, rotations)
    assert torch.equal(keys, before)
    assert inferred.dtype == dtype and torch.equal(inferred, trained)
    assert not torch.equal(inferred, keys)  # it did rotate


def _memory_bank(attn, side: int = 8, frames: int = 3, pointers: int = 4) -> tuple:
    """Seeded (current, current_pos, memory, memory_pos, pointers) for the micro model's memory attention."""
    torch.manual_seed(0)
    d, kv = attn.layers[0].self_attn.q_proj.in_features, attn.layers[0].cross_attn_image.k_proj.in_features
    curr, curr_pos = torch.randn(1, side * side, d), torch.randn(1, side * side, d)
    memory = torch.randn(1, frames * side * side + pointers, kv)
    return curr, curr_pos, memory, torch.randn_like(memory), pointers


@pytest.mark.parametrize("amx", [False, True])
def test_memory_attention_in_bf16_agrees_with_fp32_on_either_value_path(micro_model, monkeypatch, amx):
    # with AMX, values are projected before the fused kernel; without, mixed first, then projected
    monkeypatch.setattr(common, "cpu_has_amx", lambda: amx)
    attn = micro_model.network.memory_attention
    curr, curr_pos, memory, memory_pos, pointers = _memory_bank(attn)
    with torch.inference_mode():
        expected = attn(curr, curr_pos, memory, memory_pos, pointers)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = attn(curr, curr_pos, memory, memory_pos, pointers)
    assert got.shape == expected.shape
    err = (got.float() - expected).abs().max().item()
    assert err < 0.05 * expected.abs().max().item(), err


def test_float32_memory_attention_mixes_memories_first_in_inference_as_training_computes(micro_model, monkeypatch):
    """Float32 inference on CPU mixes the 64-wide memories before their value projection, in chunks
    of queries (4x fewer multiply-adds in the mix); training keeps the fused kernel on projected values."""
    mixed_first = []
    original = transformer.RoPEAttention._attend_unprojected_values
    monkeypatch.setattr(transformer.RoPEAttention, "_attend_unprojected_values",
                        lambda self, *a: mixed_first.append(1) or original(self, *a))
    monkeypatch.setattr(common, "_CHUNK_BYTES", 4096)  # at the micro size, as at 1024: one large attention
    monkeypatch.setattr(common, "rows_per_chunk", lambda keys, size: 16)  # in several chunks of queries
    attn = micro_model.network.memory_attention
    curr, curr_pos, memory, memory_pos, pointers = _memory_bank(attn)
    with torch.enable_grad():
        trained = attn(curr.requires_grad_(), curr_pos, memory, memory_pos, pointers).detach()
    assert not mixed_first
    with torch.inference_mode():
        inferred = attn(curr.detach(), curr_pos, memory, memory_pos, pointers)
    assert len(mixed_first) == len(attn.layers)
    torch.testing.assert_close(inferred, trained, rtol=1e-4, atol=1e-5)
