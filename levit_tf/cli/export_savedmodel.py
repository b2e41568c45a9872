"""``levit-tf export-savedmodel``: a plain tf.saved_model for serving (image bytes in, labels
out)."""

from __future__ import annotations

import argparse

from levit_tf.cli.errors import UserError


def cmd_export_savedmodel(args: argparse.Namespace) -> None:
    if args.top_k < 1:
        raise UserError(f"--top-k must be at least 1, got {args.top_k}")
    from levit_tf.utils.backends import require_tensorflow_backend

    require_tensorflow_backend("SavedModel export")  # before the model loads
    from levit_tf.converters import ConversionError, load_pretrained
    from levit_tf.export.saved_model import check_saved_model_target, export_saved_model

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


def add_parser(verbs: argparse._SubParsersAction) -> None:
    saved = verbs.add_parser(
        "export-savedmodel", help="write a tf.saved_model for serving (plain TF loads it)",
        epilog="example: levit-tf export-savedmodel levit-128S.keras serving/levit/1")
    saved.add_argument("model", metavar="MODEL", help=".keras file or any convert SOURCE")
    saved.add_argument("output", metavar="OUTDIR")
    saved.add_argument("--top-k", type=int, default=5)
    saved.set_defaults(handler=cmd_export_savedmodel)
