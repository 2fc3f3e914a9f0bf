"""Each of the eight official models builds with exactly the key set, shapes and size of Meta's checkpoint."""

import json

import pytest

from conftest import DATA
from sam2_plugins import Sam2Model, official_config

MODELS = [
    "sam2.1_hiera_tiny", "sam2.1_hiera_small", "sam2.1_hiera_base_plus", "sam2.1_hiera_large",
    "sam2_hiera_tiny", "sam2_hiera_small", "sam2_hiera_base_plus", "sam2_hiera_large",
]


@pytest.mark.parametrize("layout", MODELS)
def test_official_model_has_exact_checkpoint_layout(layout):
    expected = json.loads((DATA / "official_layouts" / f"{layout}.keys.json").read_text())
    name = layout.replace("_hiera_", "-hiera-").replace("base_plus", "base-plus")
    with_meta = Sam2Model(official_config(name))
    got = {k: list(v.shape) for k, v in with_meta.state_dict().items()}
    want = {k: list(v) for k, v in expected["state_dict"].items()}
    assert sorted(set(want) - set(got)) == []
    assert sorted(set(got) - set(want)) == []
    wrong = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
    assert wrong == {}
    assert sum(v.numel() for v in with_meta.state_dict().values()) == expected["num_params"]
    # A strict load of a state_dict with that exact layout succeeds.
    with_meta.load_state_dict(with_meta.state_dict(), strict=True)
