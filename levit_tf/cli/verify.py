"""``levit-tf verify``: .tflite files against their Keras model, PASS or FAIL per file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from levit_tf.cli import arm
from levit_tf.cli.common import (
    accelerator_argument,
    check_count,
    check_images_source,
    held_out_images,
    load_model,
    tflite_report,
)
from levit_tf.cli.errors import UserError

#: Inputs of ``verify`` without --images: seeded N(0, 1) pixel_values (at most this many).
NOISE_IMAGES = 32


def _verify_inputs(source: str | None, count: int, image_size: tuple[int, int]):
    """(normalized images (N, H, W, 3), what they are): --images, else seeded noise."""
    import numpy as np

    if source is not None:
        images = held_out_images(source, count, image_size)
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
    from levit_tf.tflite.verdict import parse_bounds

    arm_profiles = arm.profiles(args)
    check_count(args.count)
    check_images_source(args.images)
    try:
        bounds = parse_bounds(args.max_error)
    except ValueError as err:
        raise UserError(str(err)) from None
    from levit_tf.tflite.report import format_table
    from levit_tf.utils.files import atomic_write_text, check_writable_file

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
    model = load_model(args.model)
    images, inputs = _verify_inputs(args.images, args.count, model.config.image_hw)
    reports = []
    for path in args.tflite:
        reports.append(tflite_report(path, model, images, args.accelerator, bounds))
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
        arm.run(args, arm_profiles, model, images)
    failed = [r for r in reports if r.verdict is not None and not r.verdict.passed]
    if failed:  # the table and --json hold the measurements; the verb's answer is no
        raise UserError(f"{len(failed)} of {len(reports)} files failed: " + "; ".join(
            f"{Path(r.path).name} ({r.quantization}: {', '.join(r.verdict.reasons)})"
            for r in failed))


def add_parser(verbs: argparse._SubParsersAction) -> None:
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
    arm.add_argument(verify)
    accelerator_argument(verify)
    verify.set_defaults(handler=cmd_verify)
