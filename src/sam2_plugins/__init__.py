"""sam2-plugins: a fast SAM 2 / SAM 2.1 engine with a video session API.

    model = sam2_plugins.load_model("micro-synthetic")   # a Sam2
    session = model.open_video("timelapse.tif")
"""

from .api import build_model, load_model
from .batch import track_many
from .checkpoints import CheckpointError
from .config import Sam2Config, official_config, parse_config
from .engine import Sam2
from .image_predictor import ImageEmbedding, ImagePrediction
from .model.sam2 import Sam2Model
from .prompts import MAX_OBJECT_ID
from .video import StreamSession, VideoSession, load_session, save_session

__all__ = [
    "load_model",
    "build_model",
    "Sam2",
    "Sam2Model",
    "Sam2Config",
    "parse_config",
    "official_config",
    "CheckpointError",
    "ImageEmbedding",
    "ImagePrediction",
    "MAX_OBJECT_ID",
    "VideoSession",
    "StreamSession",
    "load_session",
    "save_session",
    "track_many",
]
__version__ = "0.1.0"
