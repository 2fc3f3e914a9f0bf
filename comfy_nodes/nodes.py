"""The V3 node classes (``comfy_api.v0_0_2``): schemas with a tooltip on every input, and ``execute``
methods that only convert ComfyUI values and call the node logic (segment.py, video.py, the core's
mask_ops). Imported only when ComfyUI is present (from ``comfy_entrypoint``).

``comfy_api.v0_0_2`` is the newest versioned API of the ComfyUI release this pack is tested with
(0.3.64); ``latest`` is documented as unstable.
"""

from __future__ import annotations

import numpy as np
import torch
from comfy_api.v0_0_2 import ComfyExtension, io

from sam2_plugins import mask_ops
from sam2_plugins.automask import AutoMaskSettings
from sam2_plugins.synthetic import make_scene_video

from . import models
from .frames import paint_overlay
from .prompts import ObjectPrompt, build_prompts, parse_object_ids
from .segment import segment_everything, segment_images
from .video import DIRECTIONS, PREVIEW_SIZES, preview_overlay, select_masks, track_video

CATEGORY = "SAM 2 (sam2-plugins)"
Sam2Model = io.Custom("SAM2_MODEL")
Sam2Prompts = io.Custom("SAM2_PROMPTS")
Sam2Tracks = io.Custom("SAM2_TRACKS")
BoundingBox = io.Custom("BOUNDING_BOX")  # core ComfyUI's box type (SAM 3 nodes); declared by name for 0.3.x
Bbox = io.Custom("BBOX")  # [x0, y0, x1, y1] lists (Florence-2 and other detector packs)

POS_TIP = ('Positive clicks (object) as JSON in pixels: [{"x": 120, "y": 80}, ...] (KJNodes Points Editor, SAM 3 '
           'nodes) or [[120, 80], ...]. They belong to the first object (with the first box, if any).')
NEG_TIP = "Negative clicks (background) for the same object, in the same formats as positive_coords."
BOXES_TIP = ("BOUNDING_BOX {x, y, width, height} (one, a list, or a list per frame, as core SAM 3 nodes take): "
             "each box is one object.")
BBOX_TIP = "BBOX [x0, y0, x1, y1] (one, a list, or a list per frame, from detector packs): each box is one object."
MASK_TIP = "Mask prompt: each mask of the batch is one more object (it must have the frames' size)."
PROMPTS_TIP = "Prompts from SAM2 Prompt nodes (any objects, any frames); they add to the inputs above."


def _prompt_inputs() -> list:
    return [
        io.String.Input("positive_coords", optional=True, default="", tooltip=POS_TIP),
        io.String.Input("negative_coords", optional=True, default="", tooltip=NEG_TIP),
        BoundingBox.Input("bboxes", optional=True, tooltip=BOXES_TIP),
        Bbox.Input("bbox", optional=True, tooltip=BBOX_TIP),
        io.Mask.Input("mask", optional=True, tooltip=MASK_TIP),
        Sam2Prompts.Input("prompts", optional=True, tooltip=PROMPTS_TIP),
    ]


def _gather(frame: int, positive, negative, bboxes, bbox, mask, prompts) -> list[ObjectPrompt]:
    """The direct inputs' objects (ids after those of the connected prompts) plus the connected prompts."""
    chained = list(prompts or [])
    first = max((p.obj_id for p in chained), default=0) + 1
    own = build_prompts(frame=frame, positive=positive, negative=negative, masks=mask,
                        boxes=bboxes if bboxes is not None else bbox, first_id=first)
    if bboxes is not None and bbox is not None:  # both kinds of box: the BBOX ones follow
        more = build_prompts(frame=frame, boxes=bbox, first_id=max((p.obj_id for p in own), default=first - 1) + 1)
        own += more
    return chained + own


class Sam2ModelLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        models.comfy_register_folder()
        return io.Schema(
            node_id="Sam2PluginsModelLoader",
            display_name="SAM2 Model Loader",
            category=CATEGORY,
            description="Load a SAM 2 / 2.1 model: the shipped micro model, an official name (downloaded into "
                        "models/sam2 on first use) or a file in models/sam2 (extra_model_paths.yaml: key sam2).",
            inputs=[
                io.Combo.Input("model", options=models.model_choices(models.comfy_files()),
                               default="sam2.1-hiera-tiny",
                               tooltip="micro-synthetic: the small shipped model (synthetic data only); "
                                       "sam2.1-hiera-*: official models, downloaded on first use; or your files "
                                       "in models/sam2."),
                io.Combo.Input("precision", options=list(models.PRECISIONS), default="auto",
                               tooltip="auto: bf16 on CUDA (and CPUs that run it fast), else fp32. "
                                       "fp16 falls back to fp32 on the CPU."),
            ],
            outputs=[Sam2Model.Output("sam2_model", tooltip="The model; ComfyUI moves and unloads it with its "
                                                            "other models.")],
        )

    @classmethod
    def execute(cls, model: str, precision: str) -> io.NodeOutput:
        return io.NodeOutput(models.comfy_load(model, precision))


class Sam2Prompt(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="Sam2PluginsPrompt",
            display_name="SAM2 Prompt",
            category=CATEGORY,
            description="Clicks, boxes or a mask for one object on one frame; chain several for more objects "
                        "or frames.",
            inputs=[
                io.Int.Input("object_id", default=1, min=1, max=65535,
                             tooltip="The object these prompts are for (1 to 65535); more boxes or masks take "
                                     "the next ids."),
                io.Int.Input("frame", default=0, min=0, max=1_000_000,
                             tooltip="The frame (from 0) the prompts are on."),
                *_prompt_inputs(),
            ],
            outputs=[Sam2Prompts.Output("all_prompts", display_name="prompts",
                                         tooltip="These prompts and the connected ones.")],
        )

    @classmethod
    def execute(cls, object_id: int, frame: int, positive_coords: str = "", negative_coords: str = "",
                bboxes=None, bbox=None, mask=None, prompts=None) -> io.NodeOutput:
        own = build_prompts(frame=frame, positive=positive_coords, negative=negative_coords, masks=mask,
                            boxes=bboxes if bboxes is not None else bbox, first_id=object_id)
        if not own:
            raise ValueError("SAM2 Prompt: empty prompt: give positive_coords, a box or a mask")
        return io.NodeOutput(tuple(prompts or ()) + tuple(own))


class Sam2SegmentImages(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="Sam2PluginsSegmentImages",
            display_name="SAM2 Segment Images",
            category=CATEGORY,
            description="Masks from clicks, boxes or a mask on each image of a batch (no tracking).",
            inputs=[
                Sam2Model.Input("sam2_model", tooltip="From SAM2 Model Loader."),
                io.Image.Input("images", tooltip="One image or a batch; each is segmented on its own."),
                *_prompt_inputs(),
                io.Boolean.Input("individual_masks", default=False,
                                 tooltip="On: one mask per object per image (image-major, ids ascending). "
                                         "Off: the union of all objects per image."),
            ],
            outputs=[io.Mask.Output("masks", tooltip="[B, H, W], or [B x objects, H, W] for individual masks.")],
        )

    @classmethod
    def execute(cls, sam2_model, images, positive_coords: str = "", negative_coords: str = "", bboxes=None,
                bbox=None, mask=None, prompts=None, individual_masks: bool = False) -> io.NodeOutput:
        prompts = _gather(-1, positive_coords, negative_coords, bboxes, bbox, mask, prompts)
        masks, _ = segment_images(sam2_model.ready(), images, prompts, individual=individual_masks,
                                  progress=models.comfy_progress(images.shape[0]),
                                  check_interrupt=models.comfy_device_check)
        return io.NodeOutput(masks)


class Sam2SegmentEverything(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        defaults = AutoMaskSettings()
        return io.Schema(
            node_id="Sam2PluginsSegmentEverything",
            display_name="SAM2 Segment Everything",
            category=CATEGORY,
            description="Automatic masks: every object SAM 2 finds from a grid of clicks, one mask each.",
            inputs=[
                Sam2Model.Input("sam2_model", tooltip="From SAM2 Model Loader."),
                io.Image.Input("image", tooltip="An image (or a batch: masks of all images, image after image)."),
                io.Int.Input("points_per_side", default=defaults.points_per_side, min=1, max=128,
                             tooltip="An n x n grid of clicks; more finds smaller objects, slower."),
                io.Float.Input("pred_iou_thresh", default=defaults.pred_iou_thresh, min=0.0, max=1.0, step=0.01,
                               tooltip="Keep masks the model rates above this (0.6 suits the micro model)."),
                io.Float.Input("stability_thresh", default=defaults.stability_score_thresh, min=0.0, max=1.0,
                               step=0.01, tooltip="Keep masks stable under threshold changes (0.7 suits the "
                                                  "micro model)."),
                io.Float.Input("box_nms_thresh", default=defaults.box_nms_thresh, min=0.0, max=1.0, step=0.01,
                               tooltip="Of two masks whose boxes overlap more than this, the weaker goes."),
                io.Int.Input("min_area", default=0, min=0, max=1_000_000,
                             tooltip="Fill holes and drop islands and masks smaller than this (pixels)."),
                io.Int.Input("max_objects", default=0, min=0, max=65535,
                             tooltip="Keep at most this many masks per image, best first (0: all)."),
            ],
            outputs=[io.Mask.Output("masks", tooltip="One mask per object, best first: connect to SAM2 Track "
                                                     "Video's mask input to track them all."),
                     io.Image.Output("preview", tooltip="The image with every object in its colour."),
                     io.Int.Output("count", tooltip="How many objects were found (all images together).")],
        )

    @classmethod
    def execute(cls, sam2_model, image, points_per_side: int, pred_iou_thresh: float, stability_thresh: float,
                box_nms_thresh: float, min_area: int, max_objects: int) -> io.NodeOutput:
        settings = AutoMaskSettings(points_per_side=points_per_side, pred_iou_thresh=pred_iou_thresh,
                                    stability_score_thresh=stability_thresh, box_nms_thresh=box_nms_thresh,
                                    min_mask_region_area=min_area)
        masks, counts = segment_everything(sam2_model.ready(), image, settings, max_objects=max_objects,
                                           progress=models.comfy_progress(image.shape[0]),
                                           check_interrupt=models.comfy_device_check)
        preview = torch.empty((image.shape[0], image.shape[1], image.shape[2], 3), dtype=torch.float32)
        start = 0
        for i, n in enumerate(counts):
            paint_overlay(preview[i], image[i], masks[start:start + n].numpy() > 0.5, list(range(1, n + 1)), 0.6)
            start += n
        return io.NodeOutput(masks, preview, int(sum(counts)))


class Sam2TrackVideo(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="Sam2PluginsTrackVideo",
            display_name="SAM2 Track Video",
            category=CATEGORY,
            description="Track prompted objects through video frames with SAM 2's memory: forward, backward or "
                        "both, from any frame. Frames are read one at a time.",
            inputs=[
                Sam2Model.Input("sam2_model", tooltip="From SAM2 Model Loader."),
                io.Image.Input("images", tooltip="The video's frames as an IMAGE batch."),
                *_prompt_inputs(),
                io.Combo.Input("direction", options=list(DIRECTIONS), default="forward",
                               tooltip="forward: start_frame to the last frame; backward: start_frame to frame 0; "
                                       "both: both ways."),
                io.Int.Input("start_frame", default=-1, min=-1, max=1_000_000,
                             tooltip="Where tracking starts, and the frame the direct prompt inputs are on. -1: "
                                     "frame 0 for direct inputs; with SAM2 Prompt nodes, their earliest frame "
                                     "(latest going backward)."),
                io.String.Input("object_ids", default="",
                                tooltip="Objects in the masks output, e.g. 1, 3 or 2-5 (empty: all)."),
                io.Combo.Input("preview_size", options=list(PREVIEW_SIZES), default="half",
                               tooltip="Size of the preview IMAGE. A full-size preview holds as much memory as "
                                       "the frames themselves (11 GB for 1,000 frames of 720p); half holds a "
                                       "quarter of that."),
                io.Float.Input("opacity", default=0.5, min=0.0, max=1.0, step=0.05,
                               tooltip="How strongly the preview tints objects."),
            ],
            outputs=[io.Mask.Output("masks", tooltip="[frames, H, W]: the chosen objects together."),
                     Sam2Tracks.Output("tracks", tooltip="Every object's masks: pick some with SAM2 Tracks To "
                                                         "Mask."),
                     io.Image.Output("preview", tooltip="Frames with coloured objects.")],
        )

    @classmethod
    def execute(cls, sam2_model, images, positive_coords: str = "", negative_coords: str = "", bboxes=None,
                bbox=None, mask=None, prompts=None, direction: str = "forward", start_frame: int = -1,
                object_ids: str = "", preview_size: str = "half", opacity: float = 0.5) -> io.NodeOutput:
        frame = max(start_frame, 0)
        prompts = _gather(frame, positive_coords, negative_coords, bboxes, bbox, mask, prompts)
        combined, tracks, shown = track_video(
            sam2_model.ready(), images, prompts, direction=direction, start_frame=start_frame,
            object_ids=parse_object_ids(object_ids), preview=preview_size, opacity=opacity,
            progress=models.comfy_progress(images.shape[0]), check_interrupt=models.comfy_device_check)
        return io.NodeOutput(combined, tracks, shown)


class Sam2TracksToMask(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="Sam2PluginsTracksToMask",
            display_name="SAM2 Tracks To Mask",
            category=CATEGORY,
            description="Masks of chosen tracked objects, and a preview of them.",
            inputs=[
                Sam2Tracks.Input("tracks", tooltip="From SAM2 Track Video."),
                io.String.Input("object_ids", default="", tooltip="Objects to include, e.g. 1, 3 or 2-5 "
                                                                  "(empty: all)."),
                io.Image.Input("images", optional=True, tooltip="The tracked frames, for the preview output."),
            ],
            outputs=[io.Mask.Output("masks", tooltip="[frames, H, W]: the union of the chosen objects."),
                     io.Image.Output("preview", tooltip="The frames with the chosen objects coloured (black "
                                                        "frames without images).")],
        )

    @classmethod
    def execute(cls, tracks, object_ids: str = "", images=None) -> io.NodeOutput:
        ids = parse_object_ids(object_ids)
        masks = select_masks(tracks, ids)
        if images is None:
            images = torch.zeros((tracks.num_frames, tracks.height, tracks.width, 3))
        return io.NodeOutput(masks, preview_overlay(images, tracks, ids))


class Sam2GrowMask(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="Sam2PluginsGrowMask", display_name="SAM2 Grow / Shrink Mask", category=CATEGORY,
            description="Grow or shrink masks by a round brush (e.g. to cover an object's edge for inpainting).",
            inputs=[io.Mask.Input("masks", tooltip="Masks [B, H, W]."),
                    io.Int.Input("pixels", default=8, min=-512, max=512,
                                 tooltip="Grow by this many pixels (negative: shrink).")],
            outputs=[io.Mask.Output("grown", display_name="masks", tooltip="0/1 masks.")],
        )

    @classmethod
    def execute(cls, masks, pixels: int) -> io.NodeOutput:
        return io.NodeOutput(mask_ops.grow(masks, pixels))


class Sam2FeatherMask(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="Sam2PluginsFeatherMask", display_name="SAM2 Feather Mask", category=CATEGORY,
            description="Soften mask edges for blending.",
            inputs=[io.Mask.Input("masks", tooltip="Masks [B, H, W]."),
                    io.Float.Input("radius", default=6.0, min=0.0, max=256.0, step=0.5,
                                   tooltip="Width in pixels of the soft ramp on each side of the edge.")],
            outputs=[io.Mask.Output("feathered", display_name="masks", tooltip="Soft masks in [0, 1].")],
        )

    @classmethod
    def execute(cls, masks, radius: float) -> io.NodeOutput:
        return io.NodeOutput(mask_ops.feather(masks, radius))


class Sam2BoxMask(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="Sam2PluginsBoxMask", display_name="SAM2 Bounding Box Mask", category=CATEGORY,
            description="Each mask becomes its filled bounding box (what many video inpainting models want).",
            inputs=[io.Mask.Input("masks", tooltip="Masks [B, H, W]."),
                    io.Int.Input("padding", default=8, min=0, max=1024,
                                 tooltip="Widen each box by this many pixels on every side.")],
            outputs=[io.Mask.Output("boxes", display_name="masks", tooltip="Box masks.")],
        )

    @classmethod
    def execute(cls, masks, padding: int) -> io.NodeOutput:
        return io.NodeOutput(mask_ops.bounding_box_masks(masks, padding))


class Sam2SampleVideo(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="Sam2PluginsSampleVideo", display_name="SAM2 Sample Video (synthetic)", category=CATEGORY,
            description="A synthetic video of textured shapes moving over a textured background (what the "
                        "micro model knows), for trying graphs without a video loader pack.",
            inputs=[io.Int.Input("scene", default=3, min=0, max=1_000_000, tooltip="Which synthetic scene (a seed)."),
                    io.Int.Input("frames", default=16, min=1, max=2000, tooltip="Number of frames."),
                    io.Int.Input("width", default=256, min=32, max=4096, tooltip="Frame width in pixels."),
                    io.Int.Input("height", default=192, min=32, max=4096, tooltip="Frame height in pixels."),
                    io.Int.Input("objects", default=2, min=1, max=8, tooltip="Number of moving shapes.")],
            outputs=[io.Image.Output("images", tooltip="The frames, IMAGE [frames, H, W, 3]."),
                     io.Mask.Output("truth", tooltip="The true visible masks of all shapes, for checks.")],
        )

    @classmethod
    def execute(cls, scene: int, frames: int, width: int, height: int, objects: int) -> io.NodeOutput:
        sv = make_scene_video(scene, num_frames=frames, height=height, width=width, num_objects=objects)
        images = torch.from_numpy(sv.frames).float().div_(255.0)
        return io.NodeOutput(images, torch.from_numpy((sv.labels > 0).astype(np.float32)))


NODES = [Sam2ModelLoader, Sam2Prompt, Sam2SegmentImages, Sam2SegmentEverything, Sam2TrackVideo, Sam2TracksToMask,
         Sam2GrowMask, Sam2FeatherMask, Sam2BoxMask, Sam2SampleVideo]


class Sam2Extension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return NODES
