"""``levit-tf evaluate``: accuracy, latency and size of each artefact on a user's labelled data."""

from __future__ import annotations

import argparse
from pathlib import Path

from levit_tf.cli.errors import UserError

EXAMPLES = """examples:
  levit-tf evaluate runs/d/best.keras serving/levit/1 levit_f32.tflite levit_int8.tflite \\
      --data digits
  levit-tf evaluate levit.keras levit_*.tflite --data ./heldout --json eval.json --plot eval.png
  levit-tf evaluate levit.keras levit_f16.tflite --data tfds:tf_flowers:train[90%:] \\
      --accelerator gpu

MODEL: a .keras file (or any convert SOURCE), a SavedModel folder (export-savedmodel; fed the
encoded image files through its serve_images signature) or a .tflite file of any mode (fed what
it was exported for: normalized float32 or, --uint8-input, raw RGB uint8). The first MODEL is
the reference of the 'agree' column. Classes are matched to each model's labels by name.
"""


def add_parser(verbs: argparse._SubParsersAction) -> None:
    """Registers the ``evaluate`` verb."""
    parser = verbs.add_parser(
        "evaluate", help="accuracy, latency and size of .keras / SavedModel / .tflite files "
                         "on labelled images, side by side",
        description="Evaluate each MODEL on the same labelled images: top-1, top-5 and "
                    "per-class accuracy,\ntop-1 agreement with the first MODEL, mean latency "
                    "per image (batch 1) and size.\nEvery image goes through the model's own "
                    "deployment path: the exact eval transform\nfor .keras / .tflite, the "
                    "SavedModel's in-graph preprocessing of the encoded file.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("models", metavar="MODEL", nargs="+")
    add("--data", required=True, metavar="DATA",
        help="DIR (DIR/<class>/<image>; with DIR/train + DIR/val: DIR/val), tfds:NAME[:SPLIT] "
             "(default split: validation, else test, else train[80%%:]) or digits (the "
             "held-out 20%% of finetune --data digits)")
    add("--json", metavar="PATH", help="also write every number (per image too) as JSON")
    add("--plot", metavar="FILE.png", help="accuracy and latency per model and the first "
        "model's confusion matrix (.png, .svg or .pdf; needs matplotlib)")
    add("--accelerator", choices=["cpu", "gpu"], default="cpu",
        help=".tflite files: LiteRT on the CPU (XNNPACK) or its GPU accelerator (GPU + CPU "
             "fallback; see levit-tf gpu-runtime). TensorFlow runs .keras / SavedModel")
    add("--threads", type=int, default=1, metavar="N", help="LiteRT CPU threads (default 1)")
    add("--limit", type=int, default=None, metavar="N",
        help="evaluate a random N of the images (seed 0)")
    add("--no-progress", dest="progress", action="store_false", help="no progress bar")
    parser.set_defaults(handler=run, check_args=check_args)


def check_args(args: argparse.Namespace) -> None:
    """Every check that needs no TensorFlow: options, models on disk, the data's folders,
    optional packages, writable outputs."""
    from levit_tf.evaluation.report import PLOT_SUFFIXES
    from levit_tf.evaluation.sources import (
        EvaluationError,
        check_data,
        check_model,
        check_options,
    )
    from levit_tf.utils.files import check_writable_file
    from levit_tf.utils.optional import require

    try:
        check_options(args.accelerator, args.threads, args.limit)
        for model in args.models:
            check_model(model)
        check_data(args.data)
        if args.plot:
            if Path(args.plot).suffix.lower() not in PLOT_SUFFIXES:
                raise EvaluationError(f"--plot {args.plot}: the file name must end in "
                                      f"{', '.join(PLOT_SUFFIXES)}")
            require("matplotlib", "--plot")
            check_writable_file(args.plot, "--plot")
        if args.json:
            check_writable_file(args.json, "--json")
    except ValueError as err:
        raise UserError(str(err)) from None


def run(args: argparse.Namespace) -> None:
    """Runs the verb: the table on stdout, then --json / --plot; bad input raises UserError."""
    check_args(args)
    from levit_tf.evaluation.report import format_table, write_json, write_plot
    from levit_tf.evaluation.runner import evaluate
    from levit_tf.tflite.compiled import GpuUnavailable

    try:
        evaluation = evaluate(args.models, args.data, accelerator=args.accelerator,
                              num_threads=args.threads, limit=args.limit,
                              progress=args.progress)
    except (ValueError, FileNotFoundError, GpuUnavailable) as err:
        raise UserError(str(err)) from None
    print(format_table(evaluation))
    for option, write in (("--json", write_json), ("--plot", write_plot)):
        target = getattr(args, option[2:])
        if target:
            try:
                write(evaluation, target)
            except OSError as err:
                raise UserError(f"{option} {target}: {err.strerror or err}") from None
            print(f"wrote {target}")


__all__ = ["add_parser", "check_args", "run"]
