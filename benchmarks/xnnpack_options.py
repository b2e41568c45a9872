"""Whether LiteRT's CPU options move LeViT's latency: XNNPACK's delegate flags and YNNPACK, every
(mode, option) timed in the same interleaved rounds.

    python -m benchmarks.xnnpack_options [--preset levit-128S] [--rounds 40] [--runs 20]
        [--threads 1 2] [--work DIR] [--out benchmarks/results]

LiteRT 2's ``CpuOptions`` take ``xnnpack_flags`` (the XNNPACK delegate's flags; LiteRT picks
them when unset) and ``enable_ynnpack`` (YNNPACK, XNNPACK's successor, ahead of XNNPACK). Each
option below is compiled for our float32, int8 (the default export) and dynamic files of the
same randomized weights (speed.py's exports), and first checked in this process: an option
LiteRT does not compile is reported with its error and left out; an option whose logits on one
fixed input differ from the same file under LiteRT's defaults changes the arithmetic, and is
marked so (it would be another mode, not a faster float32 or int8). Then
``thread_scaling.measure`` times every (mode, option) at each thread count, one worker process
each, in seeded random order per round. Every flag is added to QS8 | QU8 (XNNPACK's int8
kernels, which LiteRT's default keeps on), itself a row, so each flag is read against it.
Writes xnnpack_options.txt to ``--out``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks import thread_scaling
from benchmarks.thread_scaling import Key, positive, round_medians, spread

ROOT = Path(__file__).resolve().parents[1]
QS8, QU8 = 0x1, 0x2  # TFLITE_XNNPACK_DELEGATE_FLAG_* (tensorflow/lite/delegates/xnnpack)
FLAGS = {"force fp16": 0x4, "dynamic fully connected": 0x8, "latest operators": 0x40,
         "slinky": 0x100}
DEFAULT, BASE = "LiteRT default", "QS8 | QU8"
OPTIONS: dict[str, dict] = {
    DEFAULT: {},
    BASE: {"xnnpack_flags": QS8 | QU8},
    **{f"+ {name}": {"xnnpack_flags": QS8 | QU8 | flag} for name, flag in FLAGS.items()},
    "YNNPACK": {"enable_ynnpack": True},
}
MODES = ("levit-tf float32", "levit-tf int8", "levit-tf dynamic")
REFERENCE = "levit-tf float32"
SAME = 1e-5  # max |logit difference| / max |logit| under which an option left the arithmetic


@dataclass
class Check:
    """One (mode, option) compiled and run once: ``error`` when LiteRT refused it, else the
    largest logit difference from the mode under LiteRT's defaults, relative to its largest
    logit."""

    error: str | None = None
    deviation: float = 0.0

    @property
    def same_arithmetic(self) -> bool:
        return self.error is None and self.deviation <= SAME


def check(files: Mapping[str, Path], options: Mapping[str, dict] = OPTIONS,
          size: int = 224) -> dict[tuple[str, str], Check]:
    """Compiles every (mode, option) at 1 thread and compares its logits on one seeded
    normalized (1, size, size, 3) image with the mode's under LiteRT's defaults."""
    import numpy as np

    from levit_tf.tflite import CpuOptionsRejected, TFLiteModel

    image = np.random.default_rng(0).normal(size=(1, size, size, 3)).astype(np.float32)
    checks = {}
    for mode, path in files.items():
        reference = TFLiteModel(path)(image)
        scale = float(np.abs(reference).max()) or 1.0
        for option, fields in options.items():
            try:
                logits = TFLiteModel(path, cpu_options=fields)(image)
            except CpuOptionsRejected as err:
                checks[(mode, option)] = Check(error=str(err).removeprefix(f"{path}: "))
                continue
            checks[(mode, option)] = Check(deviation=float(np.abs(logits - reference).max())
                                           / scale)
    return checks


def variant(mode: str, option: str) -> str:
    return f"{mode} | {option}"


def table(times: dict[Key, list[list[float]]], checks: Mapping[tuple[str, str], Check],
          threads: Sequence[int]) -> str:
    """Per (mode, option, threads): the median latency, the per-round ratio to the same mode
    under LiteRT's defaults and to our float32 under them (median [p25-p75]), and whether the
    option kept the arithmetic; refused options with LiteRT's error."""
    medians = round_medians(times)

    def ratio(a: Key, b: Key) -> str:
        r = spread([x / y for x, y in zip(medians[a], medians[b], strict=True)])
        return f"{r['median']:.3f} [{r['p25']:.3f}-{r['p75']:.3f}]"

    lines = [f"{'mode':<18}{'option':<27}{'T':>2}{'ms':>8}  {'vs same mode, default':<23}"
             f"{'vs float32, default':<23}arithmetic"]
    for (mode, option), result in checks.items():
        if result.error is not None:
            lines.append(f"{mode:<18}{option:<27}   does not compile: {result.error}")
            continue
        for t in threads:
            key = (variant(mode, option), t)
            own, reference = (variant(mode, DEFAULT), t), (variant(REFERENCE, DEFAULT), t)
            kept = ("same" if result.same_arithmetic
                    else f"changed ({result.deviation:.1e} of the largest logit)")
            lines.append(f"{mode:<18}{option:<27}{t:>2}{spread(medians[key])['median']:>8.2f}  "
                         f"{ratio(key, own):<23}{ratio(key, reference):<23}{kept}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="levit-128S",
                        choices=sorted(thread_scaling.speed.TIMM_NAMES))
    parser.add_argument("--threads", nargs="+", type=positive, default=[1, 2])
    parser.add_argument("--rounds", type=positive, default=40)
    parser.add_argument("--runs", type=positive, default=20, help="timed runs per turn")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, help="keep (and reuse) the exported models here")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()

    from tqdm import tqdm

    from levit_tf.utils.cpu_features import cpu_model, int8_capability
    from levit_tf.utils.files import atomic_write_text

    thread_scaling.writable_out(args.out, "xnnpack_options")
    import ai_edge_litert

    machine = (f"{cpu_model()}, {os.cpu_count()} cores, {int8_capability()}, LiteRT "
               f"{getattr(ai_edge_litert, '__version__', '?')}, Python "
               f"{platform.python_version()}")
    print(f"machine: {machine}")
    with tempfile.TemporaryDirectory() as tmp:
        work = (args.work or Path(tmp)) / args.preset
        work.mkdir(parents=True, exist_ok=True)
        with tqdm(desc="exporting", bar_format="{desc}: {postfix} [{elapsed}]") as bar:
            files = {mode: path for mode, (_, path) in
                     thread_scaling.prepare(work, args.preset, MODES, bar.set_postfix_str).items()}
        checks = check(files)
        timed = {variant(mode, option): ("tflite", files[mode], OPTIONS[option])
                 for (mode, option), result in checks.items() if result.error is None}
        started = time.monotonic()
        try:
            with tqdm(total=args.rounds, desc="rounds") as bar:
                bar.set_postfix_str(f"starting {len(timed) * len(args.threads)} workers")
                measurement = thread_scaling.measure(
                    timed, args.threads, args.rounds, args.runs, seed=args.seed,
                    progress=lambda: bar.update())
        except thread_scaling.WorkerError as err:
            sys.exit(f"xnnpack_options: {err}")
    settings = (f"{args.preset} 224 px, batch 1; {args.rounds} rounds x {args.runs} timed runs "
                f"per worker per round, one worker at a time in a seeded random order (seed "
                f"{args.seed}), {time.monotonic() - started:.0f} s; ratios are per round, "
                "median [p25-p75] over rounds; flags are XNNPACK delegate flags added to "
                f"QS8 | QU8 = {QS8 | QU8:#x} ("
                f"{', '.join(f'{name} {flag:#x}' for name, flag in FLAGS.items())})")
    report = (f"machine: {machine}\n{settings}\n\n"
              f"{table(measurement.times, checks, args.threads)}\n")
    print("\n" + report)
    atomic_write_text(args.out / "xnnpack_options.txt", report)
    print(f"wrote {args.out / 'xnnpack_options.txt'}")


if __name__ == "__main__":
    main()
