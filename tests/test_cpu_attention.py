"""The CPU's bfloat16 attention paths (explicit matmuls in pieces, or the fused kernel on AMX) compute
the same attention as the float32 fused kernel."""

import pytest
import torch
import torch.nn.functional as F

from sam2_plugins.model import common


def _reference(q, k, v):
    return F.scaled_dot_product_attention(q.float(), k.float(), v.float())


@pytest.mark.parametrize("amx", [False, True])
@pytest.mark.parametrize("shape", [
    (64, 2, 16, 16, 32, 32),  # many small windows: batches of whole windows
    (1, 1, 300, 1000, 64, 64),  # one large attention in chunks of queries, the last one partial
    (1, 1, 300, 1000, 64, 16),  # values narrower than the keys (memories mixed before their projection)
])
def test_bf16_attention_pieces_equal_the_fused_kernel(monkeypatch, amx, shape):
    b, heads, n, m, d, dv = shape
    monkeypatch.setattr(common, "cpu_has_amx", lambda: amx)
    monkeypatch.setattr(common, "_CHUNK_BYTES", 64 * m * 2)  # 64 query rows per chunk: 5 chunks of 300
    torch.manual_seed(0)
    q, k = torch.randn(b, heads, n, d), torch.randn(b, heads, m, d)
    v = torch.randn(b, heads, m, dv)
    with torch.inference_mode():
        out = common.attention(q.bfloat16(), k.bfloat16(), v.bfloat16())
    assert out.shape == (b, heads, n, dv) and out.dtype == torch.bfloat16
    expected = _reference(q.bfloat16(), k.bfloat16(), v.bfloat16())
    err = (out.float() - expected).abs().max().item()
    assert err < 0.03 * expected.abs().max().item(), err


def test_position_codes_are_kept_per_dtype():
    code = common.SinePositionEncoding(16)
    x = torch.zeros(2, 8, 6, 5)
    fp32 = code(x)
    bf16 = code(x.bfloat16())
    assert fp32.dtype == torch.float32 and bf16.dtype == torch.bfloat16
    assert fp32.shape == bf16.shape == (2, 16, 6, 5)
    assert torch.equal(bf16, fp32.bfloat16())
    assert torch.equal(code(x), fp32)  # the float32 code is unchanged by the bfloat16 request
