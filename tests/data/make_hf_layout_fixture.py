"""Regenerate tests/data/micro_hf_layout.safetensors: the micro SAM 2.1 weights in the transformers layout.

    PYTHONPATH=src python tests/data/make_hf_layout_fixture.py            # write the fixture
    PYTHONPATH=src python tests/data/make_hf_layout_fixture.py --verify   # also check it against transformers

The fixture is ``original_to_hf(micro_reference.safetensors)``. It was verified with transformers 5.23.0
(``--verify``; the key set is the same in 4.56.0, the first release with SAM 2): it loads with
``strict=True`` and identical shapes into a ``Sam2VideoModel`` whose config is equivalent to the micro
model, and ``hf_to_original(model.state_dict())`` gives back the micro weights bit for bit. With those
weights transformers' ``Sam2Model`` reproduced Meta's image logits in reference.npz to within 5e-6.

transformers is needed only for ``--verify``; the test suite does not need it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from sam2_plugins.checkpoints.hf_layout import hf_to_original, original_to_hf

DATA = Path(__file__).resolve().parent
SOURCE = DATA / "micro_reference.safetensors"
TARGET = DATA / "micro_hf_layout.safetensors"


def micro_transformers_model():
    """A transformers ``Sam2VideoModel`` shaped like the micro model (see sam2.1_hiera_micro.config.json)."""
    from transformers import Sam2HieraDetConfig, Sam2VideoConfig, Sam2VideoModel, Sam2VisionConfig

    backbone = Sam2HieraDetConfig(
        hidden_size=8,
        embed_dim_per_stage=[8, 16, 32, 64],
        num_attention_heads_per_stage=[1, 2, 4, 8],
        blocks_per_stage=[1, 2, 7, 2],
        global_attention_blocks=[5, 7, 9],
        window_positional_embedding_background_size=[7, 7],
        window_size_per_stage=[8, 4, 14, 7],
        image_size=[256, 256],
    )
    vision = Sam2VisionConfig(
        backbone_config=backbone,
        backbone_channel_list=[64, 32, 16, 8],
        fpn_hidden_size=32,
        backbone_feature_sizes=[[64, 64], [32, 32], [16, 16]],
        fpn_top_down_levels=[2, 3],
    )
    config = Sam2VideoConfig(
        vision_config=vision,
        prompt_encoder_config=dict(hidden_size=32, image_size=256, patch_size=16, mask_input_channels=16),
        mask_decoder_config=dict(
            hidden_size=32, mlp_dim=2048, num_attention_heads=8, attention_downsample_rate=2, iou_head_hidden_dim=256
        ),
        image_size=256,
        memory_attention_hidden_size=32,
        memory_attention_feed_forward_hidden_size=64,
        memory_attention_num_attention_heads=1,
        memory_attention_rope_feat_sizes=[16, 16],
        memory_encoder_hidden_size=32,
        memory_encoder_output_channels=16,
        mask_downsampler_embed_dim=32,
        memory_fuser_embed_dim=32,
        memory_fuser_intermediate_dim=128,
        enable_temporal_pos_encoding_for_object_pointers=True,  # SAM 2.1
        enable_occlusion_spatial_embedding=True,  # SAM 2.1
    )
    model = Sam2VideoModel(config)
    # transformers hard-codes kv_in_dim=64 for memory_attention.layers.*.cross_attn_image (the memory
    # channel count of every official model); the micro model's memories have 16 channels.
    mem_dim = config.memory_encoder_output_channels
    for layer in model.memory_attention.layers:
        att = layer.cross_attn_image
        att.k_proj = torch.nn.Linear(mem_dim, att.internal_dim)
        att.v_proj = torch.nn.Linear(mem_dim, att.internal_dim)
        att.kv_in_dim = mem_dim
    return model


def verify(original: dict[str, torch.Tensor], hf: dict[str, torch.Tensor]) -> None:
    import transformers

    model = micro_transformers_model()
    expected = model.state_dict()
    assert set(hf) == set(expected), sorted(set(hf) ^ set(expected))
    wrong = [k for k in hf if hf[k].shape != expected[k].shape]
    assert not wrong, wrong
    model.load_state_dict(hf, strict=True)
    back = hf_to_original(model.state_dict())
    assert set(back) == set(original)
    assert all(torch.equal(back[k], original[k]) and back[k].dtype == original[k].dtype for k in original)
    print(f"verified against transformers {transformers.__version__}: strict load, identical shapes, exact round trip")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verify", action="store_true", help="check the result against transformers (needs it)")
    args = parser.parse_args()

    original = load_file(SOURCE)
    hf = {k: v.contiguous() for k, v in original_to_hf(original).items()}
    if args.verify:
        verify(original, hf)
    save_file(hf, TARGET, metadata={"format": "pt", "layout": "transformers Sam2VideoModel (micro SAM 2.1)"})
    print(f"wrote {TARGET} ({len(hf)} tensors)")


if __name__ == "__main__":
    main()
