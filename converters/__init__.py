"""PyTorch LeViT checkpoints (HF, timm, facebookresearch) -> Keras (``levit_tf.converters``)."""

from levit_tf.converters.checkpoint_io import read_state_dict
from levit_tf.converters.convert import (
    assign_weights,
    convert_to_file,
    load_pretrained,
    read_checkpoint,
)
from levit_tf.converters.errors import ConversionError
from levit_tf.converters.infer_config import infer_config
from levit_tf.converters.layouts import detect_layout, to_canonical

__all__ = [
    "ConversionError",
    "assign_weights",
    "convert_to_file",
    "detect_layout",
    "infer_config",
    "load_pretrained",
    "read_checkpoint",
    "read_state_dict",
    "to_canonical",
]
