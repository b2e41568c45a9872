"""The ``--arm PROFILES`` part of ``levit-tf verify`` (option parsing, runtime, table, verdict)."""

from __future__ import annotations

import argparse
import sys

from levit_tf.cli.errors import UserError
from levit_tf.tflite.devices.arm.profiles import DEFAULT, PROFILES, Profile, parse_profiles

ARM_IMAGES = 16  # emulation costs ~5 s (int8) to ~30 s (float16) of CPU per 224 px image


def add_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--arm", metavar="PROFILES", nargs="?", const=",".join(DEFAULT),
        help="also run each file on emulated ARM CPUs (qemu-user, the aarch64 LiteRT wheel, "
             f"prepared once in ~/.cache/levit-tf/arm): comma-separated, from "
             f"{', '.join(PROFILES)} (default: all); on the first {ARM_IMAGES} --images; "
             "exit 1 when one is outside the bounds")


def profiles(args: argparse.Namespace) -> list[Profile] | None:
    """The ``--arm`` profiles, checked before any work (None without ``--arm``)."""
    if getattr(args, "arm", None) is None:
        return None
    if args.images is None:
        raise UserError("--arm needs --images (the held-out images to compare)")
    try:
        return parse_profiles(args.arm)
    except ValueError as err:
        raise UserError(f"--arm: {err}") from None


def run(args: argparse.Namespace, chosen: list[Profile], model, images) -> None:
    """Runs every file on every profile, prints the table; UserError (exit 1) outside bounds."""
    import numpy as np

    from levit_tf.tflite.devices.arm.runtime import ArmRuntimeError, prepare
    from levit_tf.tflite.devices.arm.verify import format_runs, verify_arm

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        runtime = prepare(progress=progress)
    except ArmRuntimeError as err:
        raise UserError(str(err)) from None
    images = images[:ARM_IMAGES]
    keras_logits = np.asarray(model.predict(images, batch_size=16, verbose=0)["logits"])
    progress(f"ARM: {len(args.tflite)} file(s) x {len(chosen)} profile(s) under qemu "
             f"{'.'.join(map(str, runtime.qemu_version))} ({len(images)} images)")
    try:
        runs = verify_arm(args.tflite, images, chosen, runtime, keras_logits, progress)
    except (RuntimeError, ValueError) as err:
        raise UserError(str(err)) from None
    print(format_runs(runs))
    failed = [r for r in runs if not r.ok]
    if failed:
        first = failed[0]
        raise UserError(f"{len(failed)} of {len(runs)} ARM runs outside the bounds (first: "
                        f"{first.profile} {first.quantization}: {'; '.join(first.failures)})")
