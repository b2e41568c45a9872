"""Label names and input description carried inside the .tflite flatbuffer (and a labels.txt).

The JSON sits in a model metadata entry named ``levit_tf``: {"id2label", "input_mode", "mean",
"std", "image_size", "quantization"}. ``read_metadata`` reads it back without TensorFlow's
converter; Android code can read the same entry, or ship the ``<model>.labels.txt`` sidecar.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

METADATA_NAME = "levit_tf"


def embed_metadata(model_bytes: bytes, metadata: dict[str, Any]) -> bytes:
    """Returns ``model_bytes`` with ``metadata`` (JSON) added as a flatbuffer metadata entry."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.python.util import (
        _convert_model_from_bytearray_to_object,
        _convert_model_from_object_to_bytearray,
    )

    model = _convert_model_from_bytearray_to_object(bytearray(model_bytes))
    buffer = schema.BufferT()
    buffer.data = list(json.dumps(metadata, sort_keys=True).encode())
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name != METADATA_NAME] + [entry]
    return bytes(_convert_model_from_object_to_bytearray(model))


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The ``levit_tf`` metadata of a .tflite file ({} when it has none)."""
    try:  # LiteRT's copy of the schema: no TensorFlow import (seconds) where LiteRT is installed
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        from tensorflow.lite.python import schema_py_generated as schema

    data = Path(path).read_bytes()
    try:
        model = schema.Model.GetRootAsModel(data, 0)
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            if entry.Name() and entry.Name().decode() == METADATA_NAME:
                buffer = model.Buffers(entry.Buffer())
                if buffer.Offset() > 1:  # data stored after the flatbuffer (ai-edge-quantizer)
                    raw = data[buffer.Offset(): buffer.Offset() + buffer.Size()]
                else:
                    raw = buffer.DataAsNumpy().tobytes()
                return json.loads(raw.decode())
    except Exception as err:  # malformed flatbuffer
        raise ValueError(f"{path}: not a readable .tflite model ({err})") from None
    return {}


def labels_sidecar(path: str | os.PathLike) -> Path:
    """``model.tflite`` -> ``model.labels.txt`` (one label per line, in class order)."""
    path = Path(path)
    return path.with_name(path.stem + ".labels.txt")
