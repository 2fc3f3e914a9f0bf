"""sam2-plugins: a fast SAM 2 / SAM 2.1 engine with a video session API."""

from .api import build_model, load_model
from .checkpoints import CheckpointError
from .config import Sam2Config, official_config, parse_config
from .image_predictor import ImageEmbedding, ImagePrediction
from .model.sam2 import Sam2Model

__all__ = [
    "load_model",
    "build_model",
    "Sam2Model",
    "Sam2Config",
    "parse_config",
    "official_config",
    "CheckpointError",
    "ImageEmbedding",
    "ImagePrediction",
]
__version__ = "0.1.0"
