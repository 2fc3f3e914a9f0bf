"""The peer: Hugging Face transformers' Sam2VideoModel, loaded with exactly our weights."""

from __future__ import annotations

import time

import torch


def transformers_tracker(model, dtype=torch.float32):
    """A transformers Sam2VideoModel holding the same weights as our ``model`` (a ``Sam2``): SAM 2.1
    tiny-like configs only, as the peer is built from transformers' default config."""
    from transformers import Sam2VideoConfig, Sam2VideoModel

    from sam2_plugins.checkpoints.hf_layout import original_to_hf

    peer = Sam2VideoModel(Sam2VideoConfig())
    peer.load_state_dict(original_to_hf(model.network.state_dict()), strict=True)
    return peer.eval().to(dtype)


def run_peer(peer, pixels: torch.Tensor, height: int, width: int, clicks, dtype=torch.float32, device="cpu"):
    """Prompt each object with one click on frame 0 and propagate; returns (seconds per frame list, masks).

    On a GPU the video, the features and the tracking state all stay on it, and each frame's
    time ends when the GPU has finished it."""
    from transformers.models.sam2_video.modeling_sam2_video import Sam2VideoInferenceSession

    size = pixels.shape[-1]
    device = torch.device(device)
    session = Sam2VideoInferenceSession(video=pixels.to(device, dtype), video_height=height, video_width=width,
                                        inference_device=device, inference_state_device=device,
                                        video_storage_device=device, dtype=dtype)
    times, masks = [], {}
    with torch.inference_mode():
        for obj_id, (x, y) in enumerate(clicks, start=1):
            idx = session.obj_id_to_idx(obj_id)
            coords = torch.tensor([[[[x / width * size, y / height * size]]]], dtype=torch.float32, device=device)
            labels = torch.ones(1, 1, 1, dtype=torch.int32, device=device)
            session.add_point_inputs(idx, 0, {"point_coords": coords, "point_labels": labels})
            session.obj_with_new_inputs = [obj_id]
            peer(session, frame_idx=0)
        start = time.perf_counter()
        for out in peer.propagate_in_video_iterator(session, start_frame_idx=0):
            if device.type == "cuda":
                torch.cuda.synchronize()
            now = time.perf_counter()
            times.append(now - start)
            start = now
            low = out.pred_masks.float()
            masks[out.frame_idx] = (torch.nn.functional.interpolate(low, (height, width), mode="bilinear") > 0)[:, 0].cpu().numpy()
    return times, masks
