"""The ``levit-tf`` command line. Exit codes: 0 ok, 1 user error (one message), 2 usage.

Each verb is a module of this package with ``add_parser(verbs)``, registering a subparser whose
``handler(args)`` raises UserError for bad input and whose optional ``check_args(args)`` runs
before TensorFlow is imported. Verb modules import nothing heavy at module level.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from levit_tf.cli import (
    convert,
    evaluate,
    export_savedmodel,
    export_tflite,
    finetune,
    gpu_runtime,
    info,
    predict,
    verify,
)
from levit_tf.cli.errors import UserError
from levit_tf.cli.interrupts import SigintGuard
from levit_tf.utils.backends import TensorFlowBackendRequired
from levit_tf.utils.native_logs import import_tensorflow_quietly
from levit_tf.utils.optional import MissingDependency

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
  levit-tf evaluate runs/d/best.keras serving/levit/1 levit.tflite --data digits
"""

#: The verbs, in the order ``levit-tf --help`` lists them.
VERBS = (convert, info, predict, export_savedmodel, export_tflite, verify, evaluate,
         gpu_runtime, finetune)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="levit-tf", description="LeViT for TensorFlow / Keras 3.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb in VERBS:
        verb.add_parser(verbs)
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
