"""Remake the bundled sample: ``python gradio_app/sample/make_sample.py``.

A synthetic scene of three textured shapes that pass behind one another
(:func:`sam2_plugins.synthetic.make_scene_video`), encoded as H.264. ``sample.json`` records the
generator's arguments, so tests regenerate the exact ground truth from the seed.
"""

import json
from pathlib import Path

import av

from sam2_plugins.synthetic import make_scene_video

HERE = Path(__file__).parent
SPEC = {"seed": 1, "num_frames": 16, "height": 192, "width": 256, "num_objects": 3, "fps": 8}


def main() -> None:
    args = {k: v for k, v in SPEC.items() if k != "fps"}
    video = make_scene_video(args.pop("seed"), **args)
    with av.open(str(HERE / "sample.mp4"), "w", options={"movflags": "+faststart"}) as out:
        stream = out.add_stream("libx264", rate=SPEC["fps"])
        stream.width, stream.height, stream.pix_fmt = SPEC["width"], SPEC["height"], "yuv420p"
        stream.options = {"crf": "12", "preset": "slow"}
        for frame in video.frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    (HERE / "sample.json").write_text(json.dumps(SPEC, indent=1) + "\n")


if __name__ == "__main__":
    main()
