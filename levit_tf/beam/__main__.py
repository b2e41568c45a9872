"""``python -m levit_tf.beam``: classify image files with Apache Beam (see ``pipeline``).

Bad input (no SavedModel, no file matching --input, an output that cannot be written, a bad
flag) is one line on stderr and exit code 1, checked before the pipeline starts.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from levit_tf.cli.errors import UserError

EXAMPLE = """example:
  python -m levit_tf.beam --model serving/levit/1 --input 'photos/*.jpg' \\
      --output preds.jsonl --direct_running_mode=multi_processing --direct_num_workers=4

Flags other than these go to Beam (--runner DataflowRunner --project ... --region ...
--temp_location gs://..., or --runner FlinkRunner / SparkRunner ...)."""


class _Parser(argparse.ArgumentParser):
    """argparse's errors as one line and exit code 1 (no usage block)."""

    def error(self, message: str):
        self.exit(1, f"levit_tf.beam: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m levit_tf.beam", epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Classify image files with the SavedModel of levit-tf export-savedmodel "
                    "on Apache Beam: one JSON line per image (path, labels, probabilities, "
                    "top-k best first); unreadable images go to a dead-letter file.")
    add = parser.add_argument
    add("--model", required=True, metavar="DIR", help="SavedModel directory (serve_images)")
    add("--input", required=True, metavar="GLOB", help="image files, e.g. 'photos/*.jpg'")
    add("--output", required=True, metavar="FILE", help="JSON lines, one per image")
    add("--dead-letter", metavar="FILE", default=None,
        help="JSON lines {path, error} of unreadable images (default: OUTPUT's name with "
             ".dead-letter.jsonl)")
    add("--top-k", type=int, default=None, metavar="K",
        help="labels per image (default: all the SavedModel gives, 5 unless exported so)")
    add("--batch-size", type=int, default=16, metavar="B", help="images per model call")
    add("--warm-sizes", default=None, metavar="HxW,...",
        help="image sizes compiled at load, e.g. 480x640,1080x1920, or none (default: "
             "common photo sizes)")
    add("--model-copies", type=int, default=None, metavar="N",
        help="N models per machine shared by all its worker processes (default: one per "
             "worker process)")
    return parser


def parse_sizes(text: str | None) -> tuple[tuple[int, int], ...] | None:
    if text is None:
        return None
    if text.strip().lower() == "none":
        return ()
    sizes = []
    for item in text.split(","):
        try:
            height, width = (int(v) for v in item.lower().split("x"))
        except ValueError:
            raise UserError(f"--warm-sizes: {item!r} is not HxW (e.g. 480x640)") from None
        if height < 1 or width < 1:
            raise UserError(f"--warm-sizes: {item!r} must be positive")
        sizes.append((height, width))
    return tuple(sizes)


def is_remote(path: str) -> bool:
    return "://" in path


def check(args: argparse.Namespace) -> None:
    """The checks made before Beam starts; raises UserError naming the flag and path."""
    from levit_tf.utils.files import check_writable_file

    for flag, value in (("--top-k", args.top_k), ("--batch-size", args.batch_size),
                        ("--model-copies", args.model_copies)):
        if value is not None and value < 1:
            raise UserError(f"{flag} must be >= 1, got {value}")
    if not is_remote(args.model) and not (Path(args.model) / "saved_model.pb").is_file():
        raise UserError(f"--model {args.model}: not a SavedModel directory (no saved_model.pb;"
                        " write one with levit-tf export-savedmodel)")
    if not is_remote(args.input) and not any(
            Path(p).is_file() for p in glob.iglob(args.input, recursive=True)):
        raise UserError(f"--input {args.input}: no file matches")
    for flag, path in (("--output", args.output), ("--dead-letter", args.dead_letter)):
        if not is_remote(path):
            try:
                check_writable_file(path, flag)
            except ValueError as err:
                raise UserError(str(err)) from None


def beam_options(beam_args: Sequence[str]) -> list[str]:
    """The Beam flags, refused (UserError) if Beam does not know one or rejects a value."""
    from apache_beam.options.pipeline_options import PipelineOptions

    options = PipelineOptions(list(beam_args))
    try:
        known = options.get_all_options(retain_unknown_options=False, drop_default=False)
    except SystemExit:  # argparse inside Beam: a bad value for a known flag
        raise UserError(f"a Beam option has a bad value: {' '.join(beam_args)}") from None
    unknown = [a for a in beam_args if a.startswith("--")
               and a[2:].split("=", 1)[0].replace("-", "_") not in known]
    if unknown:
        raise UserError(f"unknown option {unknown[0]} (neither this command's nor Beam's)")
    return list(beam_args)


@contextlib.contextmanager
def quiet_root_logger(level: int = logging.ERROR) -> Iterator[None]:
    """Raises the root logger's level for the block (Beam logs its warnings there)."""
    root = logging.getLogger()
    previous = root.level
    root.setLevel(max(level, previous))
    try:
        yield
    finally:
        root.setLevel(previous)


def main(argv: Sequence[str] | None = None) -> int:
    args, rest = build_parser().parse_known_args(argv)
    try:
        args.dead_letter = args.dead_letter or str(
            Path(args.output).with_suffix("")) + ".dead-letter.jsonl"
        warm_sizes = parse_sizes(args.warm_sizes)
        check(args)
        from levit_tf.utils.optional import require

        with quiet_root_logger():  # Beam's import / flag-parsing warnings (apitools, ...)
            require("apache_beam", "python -m levit_tf.beam")
            rest = beam_options(rest)
        from levit_tf.beam.pipeline import run

        options = {"top_k": args.top_k, "max_batch_size": args.batch_size,
                   "model_copies": args.model_copies}
        if warm_sizes is not None:
            options["warm_sizes"] = warm_sizes
        totals = run(args.model, args.input, args.output, args.dead_letter, rest, **options)
    except UserError as err:
        print(f"levit_tf.beam: error: {err}", file=sys.stderr)
        return 1
    except ImportError as err:  # MissingDependency: the extra to install
        print(f"levit_tf.beam: error: {err}", file=sys.stderr)
        return 1
    loads = totals.get("model_loads", 0)
    print(f"{totals.get('images', 0)} images -> {args.output}; "
          f"{totals.get('unreadable_images', 0)} unreadable -> {args.dead_letter}; "
          f"model loaded {loads} times" + (
              f", {totals['load_seconds'] / loads:.1f} s each with warm-up" if loads else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
