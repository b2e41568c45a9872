"""A plain ``tf.saved_model`` for serving: no levit_tf (or Keras classes) needed to load it.

Signatures:
- ``serving_default``: float32 ``pixel_values`` (B, H, W, 3), normalized -> ``logits`` and
  ``probabilities`` (B, num_labels).
- ``serve_images``: ``images`` (B,) tf.string of encoded JPEG / PNG / GIF / BMP bytes of any
  size -> the exact LeViT eval preprocessing inside the graph, then ``probabilities``,
  ``top_k_indices`` (B, k) int32, ``top_k_labels`` (B, k) string and ``top_k_probabilities``.

The graph is the folded inference model (BN folded, heads fused, constant attention biases).
The class names also ship beside it as ``assets.extra/labels.txt`` (one per line, in class
order; TF Serving's folder for files the graph does not load), as beside a .tflite export.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import tensorflow as tf

from levit_tf.data.decode import decode_image
from levit_tf.data.pipeline import eval_config
from levit_tf.models.levit.inference import LevitForInference, optimize_for_inference
from levit_tf.models.levit.modeling_levit import LevitPreTrainedModel
from levit_tf.preprocessing.transforms import preprocess_image
from levit_tf.utils.backends import require_tensorflow_backend
from levit_tf.utils.files import atomic_folder, check_writable_dir
from levit_tf.utils.labels import check_one_line_labels, ordered_labels


def serving_archive(model: LevitForInference, *, top_k: int = 5, batch_size: int | None = None,
                    probabilities: bool = True, images: bool = True) -> keras.export.ExportArchive:
    """The folded model and its signatures, as the SavedModel holds them (Keras' ExportArchive).

    ``serving_default``: ``pixel_values`` (batch_size or any, H, W, C) in the model's input dtype
    (uint8 for a ``uint8``-input model, else float32) -> ``logits`` (B, K), plus
    ``probabilities`` with ``probabilities=True``. With ``images=True`` also ``serve_images``
    (see the module text). ``levit-tf export-savedmodel`` writes the full archive; the TFLite
    exporter converts the plain one (``batch_size=1, probabilities=False, images=False``).
    """
    config = model.config
    height, width = config.image_hw
    dtype = tf.uint8 if model.input_mode == "uint8" else tf.float32
    pixel_spec = tf.TensorSpec((batch_size, height, width, config.num_channels), dtype,
                               name="pixel_values")

    def classify(pixel_values: tf.Tensor) -> dict[str, tf.Tensor]:
        if batch_size is None:  # a fixed batch is never empty
            check = tf.debugging.assert_positive(
                tf.shape(pixel_values)[0],
                message="empty batch (0 images); pass at least one image")
            with tf.control_dependencies([check]):
                pixel_values = tf.identity(pixel_values)
        logits = model(pixel_values)["logits"]
        if not probabilities:
            return {"logits": logits}
        return {"logits": logits, "probabilities": tf.nn.softmax(logits, axis=-1)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name="serving_default", fn=classify, input_signature=[pixel_spec])
    if images:
        labels = tf.constant([config.id2label[i] for i in range(config.num_labels)])
        k = min(top_k, config.num_labels)
        # the model's own size (non-square: see eval_config; the crop is H x W)
        processor_config = eval_config(config.image_hw)

        def classify_images(encoded: tf.Tensor) -> dict[str, tf.Tensor]:
            pixels = tf.map_fn(
                lambda data: preprocess_image(decode_image(data), processor_config), encoded,
                fn_output_signature=tf.TensorSpec((height, width, 3), tf.float32))
            scores = tf.nn.softmax(classify(pixels)["logits"], axis=-1)
            top = tf.math.top_k(scores, k=k)
            return {"probabilities": scores, "top_k_indices": top.indices,
                    "top_k_probabilities": top.values,
                    "top_k_labels": tf.gather(labels, top.indices)}

        archive.add_endpoint(name="serve_images", fn=classify_images,
                             input_signature=[tf.TensorSpec((None,), tf.string, name="images")])
    return archive


def export_saved_model(model: keras.Model, directory: str | os.PathLike,
                       top_k: int = 5) -> Path:
    """Writes ``model`` (a LeViT classifier) as a SavedModel directory, atomically.

    The folder and its files get the modes a normal write gives (umask), so another user
    (TF Serving, a container) can read them. Raises FileExistsError when ``directory`` is not
    empty, also when another writer published it while this one was writing.
    """
    require_tensorflow_backend("SavedModel export")
    directory = Path(directory)
    check_saved_model_target(directory, top_k)
    if not isinstance(model, LevitForInference) and (
            not isinstance(model, LevitPreTrainedModel) or not model.config.num_labels):
        raise ValueError(f"expected a LeViT classifier, got {type(model).__name__}")
    labels = ordered_labels(model.config.id2label, model.config.num_labels)
    check_one_line_labels(labels)
    if not isinstance(model, LevitForInference):
        model = optimize_for_inference(model)
    if not model.with_head:
        raise ValueError("the SavedModel needs a classifier with a head")
    archive = serving_archive(model, top_k=top_k)
    directory.parent.mkdir(parents=True, exist_ok=True)
    with atomic_folder(directory) as staging:
        archive.write_out(str(staging), verbose=False)
        # the class names beside the graph, as beside a .tflite (TF Serving's assets.extra/)
        (staging / "assets.extra").mkdir()
        (staging / "assets.extra" / "labels.txt").write_text(
            "".join(f"{label}\n" for label in labels), encoding="utf-8")
    return directory


def check_saved_model_target(directory: str | os.PathLike, top_k: int = 5) -> None:
    """The checks made before any export work: ``top_k`` >= 1, and ``directory`` a new or
    empty folder that can be created. Raises ValueError / FileExistsError naming it."""
    directory = Path(directory)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be an integer >= 1, got {top_k!r}")
    if directory.exists() and not directory.is_dir():
        raise FileExistsError(f"{directory} exists and is not a directory")
    if directory.exists() and any(directory.iterdir()):
        raise FileExistsError(f"{directory} exists and is not empty")
    parent = directory.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{directory}: {parent} is not a directory")
    check_writable_dir(parent, "output", directory)
