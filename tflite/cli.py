"""``levit-tf export-tflite`` and ``levit-tf verify``."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from levit_tf.cli_errors import UserError

MODES = ("float32", "float16", "dynamic", "int8", "int16x8")


def _load_model(source: str):
    from levit_tf.converters import ConversionError, load_pretrained

    try:
        return load_pretrained(source)
    except (ConversionError, FileNotFoundError) as err:
        raise UserError(str(err)) from None


def _images(source: str | None, count: int, image_size: tuple[int, int]):
    """Normalized held-out images for fidelity, from a folder / tfds:NAME / digits[:SPLIT]."""
    import numpy as np

    from levit_tf.tflite.calibration import normalized_images

    if source is None:
        return None
    try:
        dataset = normalized_images(source, image_size)
        images = np.stack(list(dataset.take(count).as_numpy_iterator()))
    except (ValueError, OSError) as err:
        raise UserError(f"--images {source}: {err}") from None
    return images


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


def _check_count(count: int) -> None:
    if count < 1:
        raise UserError(f"--count must be at least 1, got {count}")


def _check_images_source(source: str | None) -> None:
    """--images must name a folder or tfds:NAME[:SPLIT]; checked before any work."""
    if source is None or source.startswith("tfds:"):
        return
    if not Path(source).is_dir():
        what = "is not a folder" if Path(source).exists() else "no such folder"
        raise UserError(f"--images {source}: {what} (expected a folder of images or "
                        "tfds:NAME[:SPLIT])")


def _report(path, model, images, accelerator: str, bounds: dict[str, float] | None = None):
    from levit_tf.tflite.compiled import GpuUnavailable
    from levit_tf.tflite.report import build_report

    try:
        return build_report(path, model, images, gpu=accelerator == "gpu", bounds=bounds)
    except (ValueError, GpuUnavailable) as err:
        raise UserError(str(err)) from None


def cmd_gpu_runtime(args: argparse.Namespace) -> None:
    from levit_tf.tflite import lavapipe

    try:
        found = lavapipe.prepare()
    except lavapipe.LavapipeError as err:
        raise UserError(str(err)) from None
    print(f"lavapipe (Mesa {found.mesa_version}) ready in {found.root.parent}; "
          "--accelerator gpu uses it when the system has no Vulkan loader. Other programs: "
          f"VK_DRIVER_FILES={found.icd} LD_LIBRARY_PATH={found.loader.parent}")


def cmd_export(args: argparse.Namespace) -> None:
    from levit_tf.backends import require_tensorflow_backend

    require_tensorflow_backend("TFLite export")  # before the model loads
    _check_count(args.count)
    _check_images_source(args.images if args.report else None)
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
    model = _load_model(args.model)
    # held-out images before the export: a bad --images writes no .tflite
    images = _images(args.images, args.count, model.config.image_hw) if args.report else None
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
        report = _report(result.path, model, images, args.accelerator)
        print(format_table([report]))


#: Inputs of ``verify`` without --images: seeded N(0, 1) pixel_values (at most this many).
NOISE_IMAGES = 32


def _verify_inputs(source: str | None, count: int, image_size: tuple[int, int]):
    """(normalized images (N, H, W, 3), what they are): --images, else seeded noise."""
    import numpy as np

    if source is not None:
        images = _images(source, count, image_size)
        return images, f"{len(images)} images from {source}"
    count = min(count, NOISE_IMAGES)
    noise = np.random.default_rng(0).standard_normal((count, *image_size, 3), np.float32)
    return noise, (f"{count} seeded N(0, 1) pixel_values (no --images; held-out images test "
                   "quantized files on what they will see)")


def _check_noise_fits(paths: list[str]) -> None:
    """Calibrated files (int8, int16x8) are judged on real images only: their activation
    ranges were fitted to images, and noise leaves them, so a correct file would fail."""
    from levit_tf.tflite.metadata import read_metadata
    from levit_tf.tflite.quantization import Quantization

    for path in paths:
        try:
            mode = read_metadata(path).get("quantization", "unknown")
        except ValueError as err:
            raise UserError(str(err)) from None
        if mode in {m.value for m in Quantization if m.needs_calibration}:
            raise UserError(f"{path} is {mode}: its activation ranges were calibrated on "
                            "images, so verify needs --images (held-out images) to judge it")


def cmd_verify(args: argparse.Namespace) -> None:
    from levit_tf.tflite import arm
    from levit_tf.tflite.verdict import parse_bounds

    arm_profiles = arm.command.profiles(args)
    _check_count(args.count)
    _check_images_source(args.images)
    try:
        bounds = parse_bounds(args.max_error)
    except ValueError as err:
        raise UserError(str(err)) from None
    from levit_tf.files import atomic_write_text, check_writable_file
    from levit_tf.tflite.report import format_table

    for path in args.tflite:
        if not Path(path).is_file():
            raise UserError(f"{path}: no such file")
    if args.images is None:
        _check_noise_fits(args.tflite)
    if args.json:
        try:  # before the benchmark, not after it
            check_writable_file(args.json, "--json")
        except ValueError as err:
            raise UserError(str(err)) from None
    model = _load_model(args.model)
    images, inputs = _verify_inputs(args.images, args.count, model.config.image_hw)
    reports = []
    for path in args.tflite:
        reports.append(_report(path, model, images, args.accelerator, bounds))
    print(f"inputs: {inputs}")
    print(format_table(reports))
    mismatched = [r for r in reports if r.mismatch]
    if mismatched:  # exit 1, and (as every failed verb) no --json file
        raise UserError("; ".join(f"{r.path} is not an export of {args.model} ({r.mismatch})"
                                  for r in mismatched))
    if args.json:
        try:
            atomic_write_text(args.json,
                              json.dumps([r.as_dict() for r in reports], indent=2) + "\n")
        except OSError as err:
            raise UserError(f"--json {args.json}: {err.strerror or err}") from None
    if arm_profiles:
        arm.command.run(args, arm_profiles, model, images)
    failed = [r for r in reports if r.verdict is not None and not r.verdict.passed]
    if failed:  # the table and --json hold the measurements; the verb's answer is no
        raise UserError(f"{len(failed)} of {len(reports)} files failed: " + "; ".join(
            f"{Path(r.path).name} ({r.quantization}: {', '.join(r.verdict.reasons)})"
            for r in failed))


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
    _accelerator_argument(export)
    export.set_defaults(handler=cmd_export)

    verify = verbs.add_parser(
        "verify", help="measure .tflite files against their Keras model: PASS or FAIL",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Runs each .tflite file and its Keras model on the same inputs and decides.\n"
                    "A file passes when (1) its logit error, RMS(tflite - keras logits) / "
                    "std(keras logits),\nis within its mode's bound: float32 1e-4, float16 "
                    "1e-2, dynamic 0.15, int16x8 0.15,\nint8 0.3 (an unrelated model scores "
                    "about 1.4), and (2) every decisive image, whose\nKeras top-1 margin is at "
                    "least 4 x bound x std(keras logits), keeps its top-1 class.\nExit 1 when "
                    "any file fails (the table and --json still hold every measurement).",
        epilog="example: levit-tf verify levit.keras a.tflite b.tflite --images ./heldout "
               "--max-error int8=0.2 --arm cortex-a53,cortex-a76,i8mm")
    verify.add_argument("model", metavar="MODEL", help=".keras file or any convert SOURCE")
    verify.add_argument("tflite", metavar="FILE.tflite", nargs="+")
    verify.add_argument("--images", metavar="DIR|tfds:NAME", help="held-out images")
    verify.add_argument("--count", type=int, default=100)
    verify.add_argument("--json", metavar="PATH", help="also write the reports as JSON")
    verify.add_argument("--max-error", action="append", metavar="MODE=X",
                        help="override a mode's logit-error bound (repeatable), e.g. int8=0.2")
    from levit_tf.tflite.arm import command as arm_command

    arm_command.add_argument(verify)
    _accelerator_argument(verify)
    verify.set_defaults(handler=cmd_verify)

    gpu = verbs.add_parser(
        "gpu-runtime", help="fetch Mesa's software Vulkan (lavapipe) for --accelerator gpu",
        description="Fetches Debian bookworm-backports' mesa-vulkan-drivers (Mesa >= 25) and "
                    "libvulkan1 through a private apt folder and unpacks them into "
                    "~/.cache/levit-tf/lavapipe; the system's Mesa is not changed. "
                    "--accelerator gpu then runs LiteRT's GPU accelerator on it.")
    gpu.set_defaults(handler=cmd_gpu_runtime)


def _accelerator_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--accelerator", choices=["cpu", "gpu"], default="cpu",
                        help="gpu: also report LiteRT's GPU verdict per file (fully "
                             "GPU-accelerated or the ops left to the CPU) and the GPU-vs-CPU "
                             "logit difference at fp16 and enforce_f32 (see gpu-runtime)")
