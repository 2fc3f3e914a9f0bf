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
