"""Where a training step's time goes, Keras against PyTorch eager, by op category.

    python -m benchmarks.profile_training [--preset levit-128S] [--batch 32] [--threads 2]

Each runtime runs in its own process with its threads pinned: Keras on TF's default kernels,
Keras on TF's oneDNN kernels (``TF_ENABLE_ONEDNN_OPTS=1``), and PyTorch eager (HF
``LevitForImageClassification``, the same config). Each times its SGD step (median of
``--runs``), then profiles ``--profile-steps`` more (TF profiler / ``torch.profiler``) and sums
op time by category. The table shows ms per step per category; the profiled steps carry the
profilers' overhead, so a column's sum can exceed its timed step (most for TF's Eigen kernels).

The last lines bound the speed-up any Keras-side change could reach: the matmul and convolution
kernels (forward and backward) are a floor that only faster GEMMs can lower, so
``PyTorch step / Keras GEMM time`` is the most a Keras step could be faster than PyTorch's if
every other op were free.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.speed import keras_train_step
from benchmarks.timing import median_ms

CATEGORIES = ("matmul / conv", "batch norm", "softmax", "elementwise", "data movement",
              "optimizer", "other")
# op names (TF op types, or aten op names without "aten::") -> category, first match wins
_RULES = (
    ("matmul / conv", r"matmul|^mm$|^addmm$|^bmm$|conv|^baddbmm$"),
    ("batch norm", r"batch_?norm"),
    ("softmax", r"softmax"),
    ("optimizer", r"assign|readvariable|^_foreach|^add_$|^sgd|^resourceapply"),
    ("data movement", r"transpose|concat|^cat$|split|slice|pad|gather|index|segment|copy|"
                      r"^clone$|contiguous|^to$|^_to_copy$|^stack$|tile|reshape|embedding"),
    ("elementwise", r"^mul|^add|^sub|^div|realdiv|relu6|hardswish|hardtanh|^sum$|^mean|neg|"
                    r"^fill|^zero|^ones|^empty|^where|^maximum|^minimum|^clamp|threshold|"
                    r"sigmoid|^exp|^sqrt|rsqrt|^square|^pow|^select"),
)


def categorize(op: str) -> str:
    """'aten::addmm', '_MklNativeConv2D', 'Relu6Grad', ... -> one of ``CATEGORIES``."""
    name = re.sub(r"^(aten::|_MklNative|_Mkl)", "", op).lower()
    for category, pattern in _RULES:
        if re.search(pattern, name):
            return category
    return "other"


def _emit(runtime: str, step_ms: float, op_ms: dict[str, float]) -> None:
    print("ROW " + json.dumps({"runtime": runtime, "step_ms": step_ms, "op_ms": op_ms}),
          flush=True)


# ------------------------------------------------------------------------------- workers
def worker_keras(args: argparse.Namespace) -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)  # ops run one after the other

    from levit_tf import LevitConfig, LevitForImageClassification

    model = LevitForImageClassification(LevitConfig.from_preset(args.preset))
    step = tf.function(keras_train_step(model, args.batch))

    step_ms = median_ms(lambda: step().numpy(), warmup=3, runs=args.runs)
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        for _ in range(args.profile_steps):
            step().numpy()
        tf.profiler.experimental.stop()
        op_us = _tf_op_time_us(next(Path(logdir).rglob("*.xplane.pb")))
    runtime = "keras oneDNN" if os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "1" else "keras"
    _emit(runtime, step_ms, {op: us / 1000 / args.profile_steps for op, us in op_us.items()})


def _tf_op_time_us(xplane: Path) -> dict[str, float]:
    """Wall time per TF op type from the executor's compute-thread events of a profile."""
    try:
        from tsl.profiler.protobuf import xplane_pb2
    except ImportError:  # older TF layouts
        from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    space.ParseFromString(xplane.read_bytes())
    totals: collections.Counter[str] = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name  # "scope/op_name:OpType"
                if name.count(":") == 1:  # skips executor events such as "ExecutorState::Process"
                    totals[name.rsplit(":", 1)[1]] += event.duration_ps / 1e6
    return dict(totals)


def worker_torch(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    import transformers

    from levit_tf.testing.torch_reference import hf_config

    config = hf_config(args.preset)
    model = transformers.LevitForImageClassification(config).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(args.batch, 3, 224, 224)
    y = torch.arange(args.batch) % config.num_labels

    def step():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x).logits, y)
        loss.backward()
        optimizer.step()

    step_ms = median_ms(step, warmup=3, runs=args.runs)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        for _ in range(args.profile_steps):
            step()
    op_ms = {event.key: event.self_cpu_time_total / 1000 / args.profile_steps
             for event in profile.key_averages() if event.key.startswith("aten::")}
    _emit("pytorch eager", step_ms, op_ms)


WORKERS = {"keras": worker_keras, "torch": worker_torch}


# ------------------------------------------------------------------------------- report
def run_worker(family: str, onednn: bool, args: argparse.Namespace) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "OMP_NUM_THREADS": str(args.threads),
           "TF_ENABLE_ONEDNN_OPTS": "1" if onednn else "0"}
    command = [sys.executable, "-m", "benchmarks.profile_training", "--worker", family,
               "--preset", args.preset, "--batch", str(args.batch), "--threads",
               str(args.threads), "--runs", str(args.runs), "--profile-steps",
               str(args.profile_steps)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600,
                            cwd=Path(__file__).resolve().parents[1])
    if result.returncode:
        raise RuntimeError(f"{family} worker failed:\n{result.stderr[-3000:]}")
    rows = [json.loads(line[4:]) for line in result.stdout.splitlines() if line.startswith("ROW ")]
    return rows[0]


def by_category(op_ms: dict[str, float]) -> dict[str, float]:
    totals = dict.fromkeys(CATEGORIES, 0.0)
    for op, ms in op_ms.items():
        totals[categorize(op)] += ms
    return totals


def format_report(rows: list[dict], preset: str, batch: int, threads: int) -> str:
    names = [row["runtime"] for row in rows]
    categories = [by_category(row["op_ms"]) for row in rows]
    lines = [f"{preset}: training step (SGD, batch {batch}, {threads} threads), "
             "op time per step by category (ms)",
             f"{'category':<16}" + "".join(f"{name:>16}" for name in names)]
    for category in CATEGORIES:
        lines.append(f"{category:<16}" + "".join(f"{c[category]:16.1f}" for c in categories))
    lines.append(f"{'sum of ops':<16}" + "".join(f"{sum(c.values()):16.1f}" for c in categories))
    lines.append(f"{'step (timed)':<16}" + "".join(f"{r['step_ms']:16.1f}" for r in rows))
    lines.append(f"{'img/s':<16}" + "".join(f"{1000 * batch / r['step_ms']:16.1f}" for r in rows))
    torch_row = next((r for r in rows if r["runtime"] == "pytorch eager"), None)
    if torch_row:
        for row, category in zip(rows, categories, strict=True):
            if row is torch_row:
                continue
            gemm = category["matmul / conv"]
            lines.append(
                f"{row['runtime']}: {torch_row['step_ms'] / row['step_ms']:.2f}x PyTorch's "
                f"speed; its matmul/conv kernels alone take {gemm:.0f} ms, so with every other "
                f"op free it would reach at most {torch_row['step_ms'] / gemm:.2f}x")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="levit-128S")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5, help="timed steps (median)")
    parser.add_argument("--profile-steps", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        WORKERS[args.worker](args)
        return

    from tqdm import tqdm

    jobs = (("keras", False), ("keras", True), ("torch", False))
    rows = []
    for family, onednn in tqdm(jobs, desc="profiling", unit="runtime"):
        rows.append(run_worker(family, onednn, args))
    report = format_report(rows, args.preset, args.batch, args.threads)
    print(report)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"training_profile_{args.preset}"
    (args.out / f"{stem}.txt").write_text(report + "\n")
    (args.out / f"{stem}.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
