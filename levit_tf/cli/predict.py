"""``levit-tf predict``: classify image files with a .keras or .tflite model."""

from __future__ import annotations

import argparse

from levit_tf.cli.common import load_images
from levit_tf.cli.errors import UserError


def cmd_predict(args: argparse.Namespace) -> None:
    if args.top_k < 1:
        raise UserError(f"--top-k must be at least 1, got {args.top_k}")
    import numpy as np

    if args.model.endswith(".tflite"):
        from levit_tf.tflite import TFLiteModel
        from levit_tf.tflite.compiled import GpuUnavailable
        from levit_tf.tflite.report import to_input_domain

        try:
            model = TFLiteModel(args.model, accelerator=args.accelerator)
        except (ValueError, FileNotFoundError, GpuUnavailable) as err:
            raise UserError(str(err)) from None
        size = tuple(model.input_shape[1:3])
        logits = model(to_input_domain(load_images(args.images, size), model.input_mode))
        id2label = model.id2label
    else:
        from levit_tf.converters import ConversionError, load_pretrained

        try:
            model = load_pretrained(args.model)
        except (ConversionError, FileNotFoundError) as err:
            raise UserError(str(err)) from None
        from levit_tf.models.levit.modeling_levit import LevitForImageClassification

        if not isinstance(model, LevitForImageClassification) or not model.heads():
            raise UserError(f"{args.model}: holds a {type(model).__name__}, not a classifier")
        pixels = load_images(args.images, model.config.image_hw)
        logits = np.asarray(model.predict(pixels, verbose=0)["logits"])
        id2label = model.config.id2label
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = shifted / shifted.sum(axis=1, keepdims=True)
    for path, row in zip(args.images, probabilities, strict=True):
        print(path)
        for rank, index in enumerate(np.argsort(-row)[: args.top_k], start=1):
            print(f"  {rank}. {id2label.get(int(index), str(index))}  {row[index]:.4f}")


def add_parser(verbs: argparse._SubParsersAction) -> None:
    predict = verbs.add_parser(
        "predict", help="classify image files with a .keras or .tflite model",
        epilog="example: levit-tf predict levit-128S.keras cat.jpg dog.png --top-k 3")
    predict.add_argument("model", metavar="MODEL", help=".keras, .tflite, or any convert SOURCE")
    predict.add_argument("images", metavar="IMAGE", nargs="+")
    predict.add_argument("--top-k", type=int, default=5)
    predict.add_argument("--accelerator", choices=["cpu", "gpu"], default="cpu",
                         help=".tflite: LiteRT CompiledModel on the CPU (XNNPACK) or the GPU "
                              "(GPU + CPU fallback; see levit-tf gpu-runtime)")
    predict.set_defaults(handler=cmd_predict)
