"""``levit-tf convert``: a PyTorch checkpoint (HF, timm, facebookresearch) -> .keras."""

from __future__ import annotations

import argparse
import time

from levit_tf.cli.errors import UserError
from levit_tf.utils.image_size import image_size_argument

MODEL_CLASS_CHOICES = {
    "auto": None,
    "base": "LevitModel",
    "classification": "LevitForImageClassification",
    "teacher": "LevitForImageClassificationWithTeacher",
}


def cmd_convert(args: argparse.Namespace) -> None:
    if args.num_labels is not None and args.num_labels < 1:
        raise UserError(f"--num-labels must be at least 1, got {args.num_labels} (for a model "
                        "without heads use --model-class base)")
    from levit_tf.converters import ConversionError, convert_to_file
    from levit_tf.models.levit.modeling_levit import (
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
        from levit_tf.utils.optional import require

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


def add_parser(verbs: argparse._SubParsersAction) -> None:
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
