"""PIL-exact LeViT preprocessing in pure TensorFlow (HF ``LevitImageProcessor`` compatible)."""

from levit_tf.preprocessing.config import (
    IMAGENET_DEFAULT_MEAN,
    IMAGENET_DEFAULT_STD,
    LevitProcessorConfig,
)
from levit_tf.preprocessing.image_processor import LevitFeatureExtractor, LevitImageProcessor
from levit_tf.preprocessing.pil_resample import BICUBIC, BILINEAR, pil_resize, pil_resize_crop
from levit_tf.preprocessing.sizing import resize_output_size, resize_output_size_tf
from levit_tf.preprocessing.transforms import (
    center_crop,
    preprocess_image,
    rescale_normalize,
    to_rgb_uint8,
)

__all__ = [
    "BICUBIC",
    "BILINEAR",
    "IMAGENET_DEFAULT_MEAN",
    "IMAGENET_DEFAULT_STD",
    "LevitFeatureExtractor",
    "LevitImageProcessor",
    "LevitProcessorConfig",
    "center_crop",
    "pil_resize",
    "pil_resize_crop",
    "preprocess_image",
    "rescale_normalize",
    "resize_output_size",
    "resize_output_size_tf",
    "to_rgb_uint8",
]
