"""The ``levit-tf`` command line. Exit codes: 0 ok, 1 user error (one message), 2 usage."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence

from levit_tf.cli_errors import UserError

EXAMPLES = """examples:
  levit-tf convert facebook/levit-128S levit-128S.keras
  levit-tf convert ./levit_128s.fb_dist_in1k.safetensors levit-128S.keras
  levit-tf convert LeViT-128S-model.pth levit-128S.keras --model-class classification
  levit-tf info levit-128S.keras
"""

MODEL_CLASS_CHOICES = {
    "auto": None,
    "base": "LevitModel",
    "classification": "LevitForImageClassification",
    "teacher": "LevitForImageClassificationWithTeacher",
}


# Modules that add verbs: each has ``add_parser(verbs)`` that registers a subparser whose
# ``handler(args)`` raises UserError for bad input.
VERB_MODULES: tuple[str, ...] = ("levit_tf.tflite.cli",)


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def cmd_convert(args: argparse.Namespace) -> None:
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
    start = time.perf_counter()
    try:
        model = convert_to_file(
            args.source, args.output, model_class=classes.get(class_name),
            layout=None if args.layout == "auto" else args.layout, num_labels=args.num_labels,
            ignore_mismatched_sizes=args.ignore_mismatched_sizes, progress=True)
    except (ConversionError, FileNotFoundError) as err:
        raise UserError(str(err)) from None
    seconds = time.perf_counter() - start
    config = model.config
    print(f"wrote {args.output}: {type(model).__name__} "
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
    convert.add_argument("output", metavar="OUTPUT.keras")
    convert.add_argument("--model-class", choices=sorted(MODEL_CLASS_CHOICES), default="auto",
                         help="model to build (default: what the checkpoint holds)")
    convert.add_argument("--layout", choices=["auto", "hf", "timm", "fb"], default="auto",
                         help="checkpoint key layout (default: detected)")
    convert.add_argument("--num-labels", type=int, default=None,
                         help="new number of labels (use with --ignore-mismatched-sizes)")
    convert.add_argument("--ignore-mismatched-sizes", action="store_true",
                         help="start weights whose shape differs (e.g. new heads) fresh")
    convert.set_defaults(handler=cmd_convert)

    info = verbs.add_parser("info", help="describe a converted model or checkpoint",
                            epilog="example: levit-tf info levit-128S.keras")
    info.add_argument("model", metavar="MODEL")
    info.set_defaults(handler=cmd_info)

    import importlib

    for module in VERB_MODULES:
        importlib.import_module(module).add_parser(verbs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_tensorflow()
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], None] = args.handler
    try:
        handler(args)
    except UserError as err:
        print(f"levit-tf {args.verb}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("levit-tf: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
