"""``levit-tf export-tflite``: Keras model -> .tflite (float32, float16, dynamic, int8, int16x8)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from levit_tf.cli.common import (
    accelerator_argument,
    check_count,
    check_images_source,
    held_out_images,
    load_model,
    tflite_report,
)
from levit_tf.cli.errors import UserError

MODES = ("float32", "float16", "dynamic", "int8", "int16x8")


def _float_ops(names: list[str] | None) -> tuple[str, ...] | None:
    """--float-ops: None (the mode's default), () for 'none', else op names with 'attention'
    expanded."""
    from levit_tf.tflite import ATTENTION_FLOAT_OPS

    if names is None:
        return None
    if any(name.lower() == "none" for name in names):
        if len(names) > 1:
            raise UserError("--float-ops none cannot be combined with op names")
        return ()
    ops: list[str] = []
    for name in names or ():
        ops.extend(ATTENTION_FLOAT_OPS if name.lower() == "attention" else [name.upper()])
    return tuple(dict.fromkeys(ops))


def cmd_export(args: argparse.Namespace) -> None:
    from levit_tf.utils.backends import require_tensorflow_backend

    require_tensorflow_backend("TFLite export")  # before the model loads
    check_count(args.count)
    check_images_source(args.images if args.report else None)
    from levit_tf.tflite import export
    from levit_tf.tflite.exporter import check_request
    from levit_tf.tflite.quantization import Quantization
    from levit_tf.tflite.report import format_table

    float_ops = _float_ops(args.float_ops)
    try:  # every check that needs no model, before the model loads
        check_request(Path(args.output), Quantization(args.quantization), args.calibration_data,
                      args.calibration_steps, float_ops, args.weight_rounding)
    except ValueError as err:
        raise UserError(str(err)) from None
    model = load_model(args.model)
    # held-out images before the export: a bad --images writes no .tflite
    images = (held_out_images(args.images, args.count, model.config.image_hw)
              if args.report else None)
    start = time.perf_counter()
    try:
        result = export(model, args.output, args.quantization,
                        calibration_data=args.calibration_data,
                        calibration_steps=args.calibration_steps, uint8_input=args.uint8_input,
                        float_ops=float_ops, weight_rounding=args.weight_rounding)
    except (ValueError, TypeError, OSError) as err:
        raise UserError(str(err)) from None
    calibrated = ("" if result.calibration_images is None
                  else f", calibrated on {result.calibration_images} images")
    if result.float_ops:
        calibrated += f", in float: {' '.join(result.float_ops)}"
    if result.weight_rounding is not None:
        rounding = result.weight_rounding
        calibrated += (f", GPTQ weights: {len(rounding.layers)} layers, output error "
                       f"{rounding.error_ratio:.2f}x round-to-nearest's")
    print(f"wrote {result.path} ({result.quantization.value}, {result.input_mode} input, "
          f"{result.size_bytes / 1e6:.1f} MB{calibrated}) in {time.perf_counter() - start:.1f} s")
    if args.report:
        report = tflite_report(result.path, model, images, args.accelerator)
        print(format_table([report]))


def add_parser(verbs: argparse._SubParsersAction) -> None:
    export = verbs.add_parser(
        "export-tflite", help="Keras model -> .tflite (float32/float16/dynamic/int8/int16x8)",
        description="Export a LeViT classifier for XNNPACK (builtin ops only). BN is folded, "
                    "the heads fused and the attention biases made constant first.",
        epilog="example: levit-tf export-tflite levit.keras levit_int8.tflite "
               "--quantization int8 --calibration-data ./photos "
               "--report --images ./heldout")
    export.add_argument("model", metavar="MODEL", help=".keras file or any convert SOURCE")
    export.add_argument("output", metavar="OUT.tflite")
    export.add_argument("--quantization", choices=MODES, default="float32")
    export.add_argument("--calibration-data", metavar="DIR|tfds:NAME",
                        help="real images for int8 / int16x8 calibration")
    export.add_argument("--calibration-steps", type=int, default=None, metavar="N",
                        help="calibration images to use (default: all in the data, up to 200; "
                             "a warning below 50)")
    export.add_argument("--uint8-input", action="store_true",
                        help="take raw RGB uint8; ImageNet normalization folded into the stem")
    export.add_argument("--float-ops", nargs="+", metavar="OP",
                        help="int8: op types kept in float (selective quantization). Default "
                             "'attention' = BATCH_MATMUL SUB SOFTMAX HARD_SWISH, which keeps "
                             "the whole graph inside XNNPACK; 'none' quantizes every op (the "
                             "plain full-int8 graph: builtin kernels, slower)")
    # weight_rounding.WEIGHT_ROUNDINGS, spelled out: that module imports TensorFlow, --help not
    export.add_argument("--weight-rounding", choices=["nearest", "gptq"], default="nearest",
                        help="how int8 weights are rounded: 'nearest' (the converter's) or "
                             "'gptq' (error-compensating, on --calibration-data; dynamic, int8, "
                             "int16x8)")
    export.add_argument("--report", action="store_true",
                        help="print size, XNNPACK coverage, latency and (with --images) fidelity")
    export.add_argument("--images", metavar="DIR|tfds:NAME", help="held-out images for --report")
    export.add_argument("--count", type=int, default=100, help="held-out images to compare")
    accelerator_argument(export)
    export.set_defaults(handler=cmd_export)
