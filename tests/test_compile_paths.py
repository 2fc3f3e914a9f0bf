"""Code paths taken only under torch.compile (GPU benchmarks) give the same numbers as eager."""

import torch

from sam2_plugins.model import common


def test_rope_for_compilers_equals_the_complex_form(monkeypatch):
    rotations = common.axial_rope_angles(64, 8, 8, 10000.0)
    x = torch.randn(2, 1, 3 * 64, 64)  # three frames of an 8 x 8 grid
    eager = common.apply_rope(x, rotations)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    compiled_form = common.apply_rope(x, rotations)
    assert torch.allclose(eager, compiled_form, atol=1e-5)
    assert not torch.allclose(eager, x)  # the rotation did something


def test_memory_attention_one_object_at_a_time_equals_the_batch(micro_model):
    """CPU inference runs objects one by one (cache-friendly); training and GPUs run the batch at once."""
    torch.manual_seed(0)
    attention = micro_model.network.memory_attention
    d, kv = micro_model.config.d_model, micro_model.network.mem_dim
    side = micro_model.config.image_size // 16
    curr = torch.randn(1, side * side, d).expand(3, -1, -1)  # three objects of one frame
    curr_pos = torch.randn(1, side * side, d).expand(3, -1, -1)
    memory, memory_pos = torch.randn(3, 2 * side * side + 4, kv), torch.randn(3, 2 * side * side + 4, kv)
    with torch.no_grad():
        one_by_one = attention(curr, curr_pos, memory, memory_pos, 4)
    batched = attention(curr, curr_pos, memory, memory_pos, 4).detach()  # autograd on: the batched path
    assert torch.allclose(one_by_one, batched, atol=1e-5)
    alone = attention(curr[1:2], curr_pos[1:2], memory[1:2], memory_pos[1:2], 4).detach()
    assert torch.allclose(one_by_one[1:2], alone, atol=1e-5)
    assert not torch.allclose(one_by_one[0], one_by_one[1])  # different memories, different outputs
