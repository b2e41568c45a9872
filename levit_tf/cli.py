"""The ``levit-tf`` command line. Exit codes: 0 ok, 1 user error (one message), 2 usage."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence

from levit_tf.backends import TensorFlowBackendRequired
from levit_tf.cli_errors import UserError
from levit_tf.image_size import image_size_argument
from levit_tf.interrupts import SigintGuard
from levit_tf.native_logs import import_tensorflow_quietly
from levit_tf.optional import MissingDependency

EXAMPLES = """examples:
  levit-tf convert facebook/levit-128S levit-128S.keras
  levit-tf convert ./levit_128s.fb_dist_in1k.safetensors levit-128S.keras
  levit-tf convert LeViT-128S-model.pth levit-128S.keras --model-class classification
  levit-tf convert facebook/levit-128S levit-128S-256.keras --image-size 256
  levit-tf convert facebook/levit-128S levit_128s_imagenet --format keras-hub
  levit-tf info levit-128S.keras
  levit-tf predict levit-128S.keras cat.jpg --top-k 3
  levit-tf export-savedmodel levit-128S.keras serving/levit/1
  levit-tf export-tflite levit-128S.keras levit.tflite --quantization float16
  levit-tf verify levit-128S.keras levit.tflite --images ./heldout
  levit-tf finetune --model levit-128S --data digits --epochs 30 --image-size 32 --out runs/d
"""

MODEL_CLASS_CHOICES = {
    "auto": None,
    "base": "LevitModel",
    "classification": "LevitForImageClassification",
    "teacher": "LevitForImageClassificationWithTeacher",
}


# Modules that add verbs: each has ``add_parser(verbs)`` that registers a subparser whose
# ``handler(args)`` raises UserError for bad input, and optionally ``check_args(args)``, run
# before TensorFlow is imported.
VERB_MODULES: tuple[str, ...] = ("levit_tf.tflite.cli", "levit_tf.training.cli")


def cmd_convert(args: argparse.Namespace) -> None:
    if args.num_labels is not None and args.num_labels < 1:
        raise UserError(f"--num-labels must be at least 1, got {args.num_labels} (for a model "
                        "without heads use --model-class base)")
    from levit_tf.converters import ConversionError, convert_to_file
    from levit_tf.modeling_levit import (
        LevitForImageClassification,
        LevitForImageClassificationWithTeacher,
        LevitModel,
    )

    classes = {"LevitModel": LevitModel,
               "LevitForImageClassification": LevitForImageClassification,
               "LevitForImageClassificationWithTeacher": LevitForImageClassificationWithTeacher}
    class_name = MODEL_CLASS_CHOICES[args.model_class]
    convert = convert_to_file
    if args.format == "keras-hub":
        from levit_tf.optional import require

        require("keras_hub", "--format keras-hub")
        from levit_tf.keras_hub.convert import convert_to_preset as convert
    start = time.perf_counter()
    try:
        model = convert(
            args.source, args.output, model_class=classes.get(class_name),
            layout=None if args.layout == "auto" else args.layout, num_labels=args.num_labels,
            ignore_mismatched_sizes=args.ignore_mismatched_sizes, progress=True,
            bias_interpolation=args.bias_interpolation, source_image_size=args.source_image_size,
            **({} if args.image_size is None else {"image_size": args.image_size}))
    except (ConversionError, FileNotFoundError) as err:
        raise UserError(str(err)) from None
    except OSError as err:  # e.g. the disk filled up while saving
        raise UserError(f"{args.output}: {err.strerror or err}") from None
    seconds = time.perf_counter() - start
    config = model.config
    kind = " (keras-hub preset)" if args.format == "keras-hub" else ""
    print(f"wrote {args.output}{kind}: {type(model).__name__} "
          f"({config.preset_name() or 'custom'}, {model.count_params():,} parameters, "
          f"{config.num_labels} labels, input {config.image_hw}) in {seconds:.1f} s")


def cmd_info(args: argparse.Namespace) -> None:
    from levit_tf.converters import ConversionError, load_pretrained

    try:
        model = load_pretrained(args.model)
    except (ConversionError, FileNotFoundError) as err:
        raise UserError(str(err)) from None
    config = model.config
    print(f"{type(model).__name__}: {config.preset_name() or 'custom'} architecture, "
          f"{model.count_params():,} parameters")
    print(f"  input: (batch, {config.image_hw[0]}, {config.image_hw[1]}, "
          f"{config.num_channels}) float32 NHWC")
    print(f"  stages: widths {config.hidden_sizes}, heads {config.num_attention_heads}, "
          f"depths {config.depths}, key dims {config.key_dim}")
    labels = list(config.id2label.values())
    more = ", ..." if len(labels) > 3 else ""
    print(f"  labels: {config.num_labels} ({', '.join(labels[:3])}{more})")


def _load_images(paths: list[str], image_size: tuple[int, int]):
    """Files -> normalized (N, H, W, 3) through the exact eval transform; errors name the file."""
    import numpy as np
    import tensorflow as tf

    from levit_tf.data import BadImageError, decode_image, scan_image_files
    from levit_tf.data.pipeline import eval_config
    from levit_tf.preprocessing.transforms import preprocess_image

    for path in paths:
        if not os.path.isfile(path):
            raise UserError(f"{path}: no such file")
    try:
        files, _ = scan_image_files(paths, on_error="raise")
    except BadImageError as err:
        raise UserError(str(err)) from None
    config = eval_config(image_size)
    images = []
    for scanned in files:
        data = scanned.inline or tf.io.read_file(scanned.path)
        images.append(preprocess_image(decode_image(tf.constant(data)), config).numpy())
    return np.stack(images)


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
        logits = model(to_input_domain(_load_images(args.images, size), model.input_mode))
        id2label = model.id2label
    else:
        from levit_tf.converters import ConversionError, load_pretrained

        try:
            model = load_pretrained(args.model)
        except (ConversionError, FileNotFoundError) as err:
            raise UserError(str(err)) from None
        from levit_tf.modeling_levit import LevitForImageClassification

        if not isinstance(model, LevitForImageClassification) or not model.heads():
            raise UserError(f"{args.model}: holds a {type(model).__name__}, not a classifier")
        pixels = _load_images(args.images, model.config.image_hw)
        logits = np.asarray(model.predict(pixels, verbose=0)["logits"])
        id2label = model.config.id2label
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = shifted / shifted.sum(axis=1, keepdims=True)
    for path, row in zip(args.images, probabilities, strict=True):
        print(path)
        for rank, index in enumerate(np.argsort(-row)[: args.top_k], start=1):
            print(f"  {rank}. {id2label.get(int(index), str(index))}  {row[index]:.4f}")


def cmd_export_savedmodel(args: argparse.Namespace) -> None:
    if args.top_k < 1:
        raise UserError(f"--top-k must be at least 1, got {args.top_k}")
    from levit_tf.backends import require_tensorflow_backend

    require_tensorflow_backend("SavedModel export")  # before the model loads
    from levit_tf.converters import ConversionError, load_pretrained
    from levit_tf.serving import check_saved_model_target, export_saved_model

    try:
        check_saved_model_target(args.output, args.top_k)  # before the model loads
        model = load_pretrained(args.model)
        path = export_saved_model(model, args.output, top_k=args.top_k)
    except (ConversionError, FileNotFoundError, FileExistsError, ValueError) as err:
        raise UserError(str(err)) from None
    except OSError as err:
        raise UserError(f"{args.output}: {err.strerror or err}") from None
    print(f"wrote {path}: signatures serving_default (pixel_values -> logits, probabilities) "
          f"and serve_images (encoded images -> top-{args.top_k} labels)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="levit-tf", description="LeViT for TensorFlow / Keras 3.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    convert = verbs.add_parser(
        "convert", help="PyTorch checkpoint (HF, timm, facebookresearch) -> .keras",
        description="Convert a PyTorch LeViT checkpoint to a Keras model file. SOURCE is an HF "
                    "model directory or hub id, a timm checkpoint (.pth/.safetensors), or a "
                    "facebookresearch .pth; the layout and variant are detected from the weights.",
        epilog="example: levit-tf convert facebook/levit-128S levit-128S.keras",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    convert.add_argument("source", metavar="SOURCE")
    convert.add_argument("output", metavar="OUTPUT",
                         help="OUTPUT.keras, or with --format keras-hub a new or empty folder")
    convert.add_argument("--format", choices=["keras", "keras-hub"], default="keras",
                         help="keras: one .keras file (default); keras-hub: a keras-hub preset "
                              "folder for keras_hub.models.ImageClassifier.from_preset "
                              '(pip install "levit-tf[keras-hub]")')
    convert.add_argument("--model-class", choices=sorted(MODEL_CLASS_CHOICES), default="auto",
                         help="model to build (default: what the checkpoint holds)")
    convert.add_argument("--layout", choices=["auto", "hf", "timm", "fb"], default="auto",
                         help="checkpoint key layout (default: detected)")
    convert.add_argument("--num-labels", type=int, default=None,
                         help="new number of labels (use with --ignore-mismatched-sizes)")
    convert.add_argument("--ignore-mismatched-sizes", action="store_true",
                         help="start weights whose shape differs (e.g. new heads) fresh")
    convert.add_argument("--image-size", type=image_size_argument, default=None, metavar="N|HxW",
                         help="input size to build for, e.g. 256 or 192x256 (height x width, "
                              "multiples of 16); the attention-bias tables are resized from "
                              "the checkpoint's size (default: the checkpoint's size)")
    convert.add_argument("--bias-interpolation", choices=["bicubic", "bilinear"],
                         default="bicubic", help="how --image-size resizes the bias tables")
    convert.add_argument("--source-image-size", type=image_size_argument, default=None,
                         metavar="N|HxW",
                         help="size a checkpoint without config.json was trained at, when its "
                              "bias tables fit several (non-square checkpoints)")
    convert.set_defaults(handler=cmd_convert)

    info = verbs.add_parser("info", help="describe a converted model or checkpoint",
                            epilog="example: levit-tf info levit-128S.keras")
    info.add_argument("model", metavar="MODEL")
    info.set_defaults(handler=cmd_info)

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

    saved = verbs.add_parser(
        "export-savedmodel", help="write a tf.saved_model for serving (plain TF loads it)",
        epilog="example: levit-tf export-savedmodel levit-128S.keras serving/levit/1")
    saved.add_argument("model", metavar="MODEL", help=".keras file or any convert SOURCE")
    saved.add_argument("output", metavar="OUTDIR")
    saved.add_argument("--top-k", type=int, default=5)
    saved.set_defaults(handler=cmd_export_savedmodel)

    import importlib

    for module in VERB_MODULES:
        importlib.import_module(module).add_parser(verbs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Ctrl-C during start-up (imports, parsing) as well as during the verb; the guard keeps
    # one that lands in a gc callback or a native import from being lost or crashing
    with SigintGuard() as sigint:
        try:
            args = build_parser().parse_args(argv)
            handler: Callable[[argparse.Namespace], None] = args.handler
            try:
                check_args = getattr(args, "check_args", None)
                if check_args is not None:
                    check_args(args)  # option checks that need no TensorFlow: fast errors
                with sigint.deferred():
                    import_tensorflow_quietly()
                handler(args)
            except (UserError, MissingDependency, TensorFlowBackendRequired) as err:
                print(f"levit-tf {args.verb}: error: {one_line(err)}", file=sys.stderr)
                return 1
        except KeyboardInterrupt:
            print("levit-tf: interrupted", file=sys.stderr)
            return 130
    return 0


def one_line(error: BaseException) -> str:
    """The message on one line (multi-line reports are joined with '; ')."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return "; ".join(lines) or type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
