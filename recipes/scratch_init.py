"""Initialisation for training a SAM 2 model from scratch (the architecture is unchanged).

A randomly initialised mask decoder cannot tell where a click is: its prompt tokens reach the
image only through attention whose query/key projections are random, so the attention of an
image token to the click token does not depend on their distance, and the masks a click
produces carry no trace of its position. Gradient descent then sits on a long plateau
(hundreds to thousands of steps even for "a disk around the click"). These choices remove it:

* the prompt encoder's random Fourier frequencies (a buffer) are drawn at a smaller scale,
  so that every frequency is low and any pair of them gives a unimodal kernel over the image;
* the decoder's cross-attention query and key projections start as the same selection of
  Fourier channels (two frequencies per 4-dim head at d_model 64, times a gain), so image
  tokens attend to a click according to their distance from it -- localised from step 0;
* the image embedding starts with no content in the channels that attention matches on;
* memory attention starts looking at the same place in the remembered frames: its
  cross-attention queries and keys share a constant (bias) vector, so under the rotary code
  an image token's attention peaks at the memory tokens of its own position;
* the object-score head starts biased towards "present", so masks get gradients at once.
"""

from __future__ import annotations

import torch

from sam2_plugins.model.sam2 import Sam2Model


@torch.no_grad()
def localised_attention_init(model: Sam2Model, gain: float = 4.0) -> None:
    """Make every two-way-transformer cross-attention match prompt and image Fourier codes."""
    dec = model.sam_mask_decoder.transformer
    gauss = model.sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix  # (2, C/2)
    half = gauss.shape[1]
    order = torch.argsort(gauss.norm(dim=0)).tolist()  # low frequencies first
    attns = [a for layer in dec.layers for a in (layer.cross_attn_token_to_image, layer.cross_attn_image_to_token)]
    attns.append(dec.final_attn_token_to_image)
    for attn in attns:
        for proj in (attn.q_proj, attn.k_proj):
            proj.weight.zero_()
            proj.bias.zero_()
            for j in range(attn.internal_dim // 2):
                f = order[j % half]
                proj.weight[2 * j, f] = gain  # sine channel of frequency f
                proj.weight[2 * j + 1, f + half] = gain  # its cosine channel


def _matched_channels(model: Sam2Model) -> list[int]:
    """Channels of the decoder width that the localised attention reads (sine and cosine)."""
    gauss = model.sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix
    half = gauss.shape[1]
    internal = model.sam_mask_decoder.transformer.layers[0].cross_attn_image_to_token.internal_dim
    order = torch.argsort(gauss.norm(dim=0)).tolist()[: min(half, internal // 2)]
    return sorted(order + [f + half for f in order])


@torch.no_grad()
def clear_matched_channels(model: Sam2Model) -> None:
    """Start the image embedding with no content in the channels the attention matches on, so
    that image tokens meet a click by position alone until training mixes content in."""
    chans = _matched_channels(model)
    convs = model.image_encoder.neck.convs  # convs[k] serves FPN level len(convs) - 1 - k
    for k in range(model.config.scalp + 1):  # the embedding's level and the levels above it (top-down)
        convs[k].conv.weight[chans] = 0
        convs[k].conv.bias[chans] = 0


@torch.no_grad()
def local_memory_attention_init(model: Sam2Model, pair_energy: float = 40.0, pairs_per_axis: int = 4,
                                weight_scale: float = 0.3, value_gain: float = 6.0) -> None:
    """Shared q/k bias (and damped weights) in every memory cross-attention: attention follows position.

    The bias has energy only on the fastest-rotating rotary pairs of each axis, so that
    ``(R_i b) . (R_j b)`` falls off within a token or two of ``i == j``.
    """
    for layer in model.memory_attention.layers:
        attn = layer.cross_attn_image
        head_dim = attn.internal_dim // attn.num_heads
        per_axis = head_dim // 4  # rotary pairs per axis and head (x pairs first, then y)
        b = torch.zeros(attn.num_heads, head_dim)
        for p in list(range(pairs_per_axis)) + list(range(per_axis, per_axis + pairs_per_axis)):
            b[:, 2 * p] = pair_energy ** 0.5
        for proj in (attn.q_proj, attn.k_proj):
            proj.weight.mul_(weight_scale)
            proj.bias.copy_(b.flatten())
        attn.v_proj.weight.mul_(value_gain)  # a stronger trace of the remembered masks
        attn.out_proj.weight.mul_(value_gain)


@torch.no_grad()
def scratch_init(model: Sam2Model, *, pe_scale: float = 0.3, attention_gain: float = 4.0,
                 object_score_bias: float = 2.0, clear_channels: bool = True, local_memory: bool = True) -> Sam2Model:
    model.sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix.mul_(pe_scale)
    localised_attention_init(model, attention_gain)
    if clear_channels:
        clear_matched_channels(model)
    if local_memory:
        local_memory_attention_init(model)
    if model.config.pred_obj_scores:
        head = model.sam_mask_decoder.pred_obj_score_head
        last = head.layers[-1] if hasattr(head, "layers") else head
        last.bias.fill_(object_score_bias)
    return model
