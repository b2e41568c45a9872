"""1 -> 2 thread scaling of batch-1 latency, every runtime timed in the same interleaved rounds.

    python -m benchmarks.thread_scaling [--preset levit-128S] [--rounds 200] [--runs 20]
        [--work DIR] [--out benchmarks/results]

speed.py times each (runtime, threads) in its own process, one after the other, so on a shared
machine a load change between two processes moves their ratio. Here one long-lived worker
process per (mode, thread count) loads its model and warms up first; then each of ``--rounds``
rounds asks every worker, one at a time (the others idle, blocked on their pipe) and in a fresh
seeded random order, for ``--turn-warmup`` untimed and ``--runs`` timed batch-1 inferences.
Every figure is a per-round quantity (a round's median, the 2-thread / 1-thread speed-up, the
ratio of two modes within a round), summarized over the rounds: median and spread (min, p25,
p75, max).

Modes (LeViT at 224 px, the same randomized weights, exported by speed.py's functions):
levit-tf TFLite float32, dynamic, int8 (the default: attention core in float) and int8 plain
(``float_ops=()``); ONNX Runtime float32 (torch.onnx export of timm; the ``bench`` extra) and
litert-torch float32 (the peers venv: ``make peers``), each at 1 and 2 threads, pinned as
speed.py pins them (TFLite num_threads, ORT intra-op threads, OMP_NUM_THREADS). A missing peer
is skipped with one line. Writes thread_scaling.json and .txt to ``--out``, and a box plot of
the per-round ratios (thread_scaling.png) when matplotlib is installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import speed

ROOT = Path(__file__).resolve().parents[1]
OURS = {"levit-tf float32": "float32", "levit-tf dynamic": "dynamic", "levit-tf int8": "int8",
        "levit-tf int8 plain": "int8-all"}  # mode -> speed.TFLITE_MODES name
REFERENCE = "levit-tf float32"
PEERS = ("onnxruntime float32", "litert-torch float32")
MODES = (*OURS, *PEERS)

Key = tuple[str, int]  # (mode, threads)


def label(key: Key) -> str:
    return f"{key[0]} @{key[1]}T"


# ------------------------------------------------------------------------------- worker side
def tflite_runner(path: Path, threads: int, cpu_options: dict | None = None
                  ) -> tuple[Callable[[], float], dict]:
    """One timed batch-1 run of a .tflite file under XNNPACK with ``threads`` threads (the run
    speed.py times: ``TFLiteModel.latency_ms``; ``cpu_options``: further LiteRT CpuOptions
    fields), and what ran."""
    import ai_edge_litert

    from levit_tf.tflite import TFLiteModel

    model = TFLiteModel(path, num_threads=threads, cpu_options=cpu_options)
    return (lambda: model.latency_ms(runs=1, warmup=0),
            {"runtime": f"LiteRT {getattr(ai_edge_litert, '__version__', '?')} CompiledModel "
                        f"(XNNPACK), num_threads={threads}", "cpu_options": cpu_options or {}})


def onnxruntime_runner(path: Path, threads: int, cpu_options: dict | None = None
                       ) -> tuple[Callable[[], float], dict]:
    """One timed batch-1 run of an .onnx file on ONNX Runtime's CPU provider with ``threads``
    intra-op threads (as speed.py), and what ran."""
    if cpu_options:
        raise ValueError("cpu_options are LiteRT's: ONNX Runtime takes none")
    import numpy as np
    import onnxruntime as ort

    session = speed.onnx_session(path, threads)
    feed = {session.get_inputs()[0].name:
            np.random.default_rng(0).normal(size=(1, 3, 224, 224)).astype(np.float32)}

    def run() -> float:
        start = time.perf_counter()
        session.run(None, feed)
        return (time.perf_counter() - start) * 1000

    return run, {"runtime": f"ONNX Runtime {ort.__version__} {session.get_providers()[0]}, "
                            f"intra_op_num_threads={session.get_session_options().intra_op_num_threads}"}


RUNNERS = {"tflite": tflite_runner, "onnxruntime": onnxruntime_runner}


def reply(value) -> None:
    print("REPLY " + json.dumps(value), flush=True)


def serve(kind: str, path: Path, threads: int, warmup: int,
          cpu_options: dict | None = None) -> None:
    """The worker loop: load, warm up, say READY (pid, threads, runtime); then per request line
    'RUNS TURN_WARMUP' run TURN_WARMUP untimed and RUNS timed inferences and answer
    {start, end (CLOCK_MONOTONIC, s), ms: [RUNS times]}; exit at end of input."""
    run, info = RUNNERS[kind](path, threads, cpu_options)
    for _ in range(warmup):
        run()
    reply({"pid": os.getpid(), "threads": threads, **info})
    for line in sys.stdin:
        runs, turn_warmup = map(int, line.split())
        start = time.monotonic()
        for _ in range(turn_warmup):
            run()
        times = [run() for _ in range(runs)]
        reply({"start": start, "end": time.monotonic(), "ms": times})


# ------------------------------------------------------------------------------- coordinator
class WorkerError(RuntimeError):
    """A worker process died or answered something else than the protocol."""


class Worker:
    """A long-lived timing process (``serve``) for one (mode, threads), its threads pinned;
    ``cpu_options``: LiteRT CpuOptions fields for a .tflite runner."""

    def __init__(self, key: Key, kind: str, path: Path, warmup: int,
                 cpu_options: dict | None = None) -> None:
        self.key = key
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.thread_scaling", "--serve", kind, "--model",
             str(path), "--threads", str(key[1]), "--warmup", str(warmup), "--cpu-options",
             json.dumps(cpu_options or {})],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
            env=speed.worker_env(key[1]), cwd=ROOT)
        self.info: dict = {}

    def read(self):
        for line in self.process.stdout:
            if line.startswith("REPLY "):
                return json.loads(line[6:])
        self.process.wait(timeout=30)
        self.log.seek(0)
        tail = self.log.read().decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise WorkerError(f"{label(self.key)} worker exited with {self.process.returncode}: "
                          f"{tail[0]}")

    def ready(self) -> dict:
        self.info = self.read()
        if self.info.get("threads") != self.key[1]:
            raise WorkerError(f"{label(self.key)} worker runs {self.info.get('threads')} threads")
        return self.info

    def turn(self, runs: int, turn_warmup: int) -> dict:
        self.process.stdin.write(f"{runs} {turn_warmup}\n")
        self.process.stdin.flush()
        return self.read()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@dataclass
class Measurement:
    """What the rounds produced: per worker its info and, per round, its timed runs (ms); per
    round the order the workers ran in and each turn's (start, end) monotonic time (s)."""

    workers: dict[Key, dict]
    times: dict[Key, list[list[float]]]
    orders: list[list[Key]] = field(default_factory=list)
    turns: list[list[tuple[float, float]]] = field(default_factory=list)


def measure(files: dict[str, tuple[str, Path] | tuple[str, Path, dict]], threads: Sequence[int],
            rounds: int, runs: int, *, warmup: int = 10, turn_warmup: int = 2, seed: int = 0,
            settle_s: float = 0.02, progress: Callable[[], None] | None = None) -> Measurement:
    """Starts one worker per (mode, threads) of ``files`` (mode -> (runner kind, model file[,
    LiteRT CpuOptions fields])),
    waits until all have loaded and warmed up, then runs ``rounds`` rounds: in each, every
    worker in turn (a fresh order from ``random.Random(seed)``, ``settle_s`` idle before each
    turn so the previous worker's spinning threads stop) times ``runs`` inferences."""
    keys = [(mode, t) for mode in files for t in threads]
    workers: dict[Key, Worker] = {}
    try:
        for key in keys:  # all load in parallel
            kind, path, *cpu_options = files[key[0]]
            workers[key] = Worker(key, kind, path, warmup, *cpu_options)
        result = Measurement({key: workers[key].ready() for key in keys},
                             {key: [] for key in keys})
        rng = random.Random(seed)
        for _ in range(rounds):
            order = rng.sample(keys, len(keys))
            spans = []
            for key in order:
                time.sleep(settle_s)
                answer = workers[key].turn(runs, turn_warmup)
                result.times[key].append(answer["ms"])
                spans.append((answer["start"], answer["end"]))
            result.orders.append(order)
            result.turns.append(spans)
            if progress:
                progress()
        return result
    finally:
        for worker in workers.values():
            worker.close()


# ------------------------------------------------------------------------------- summary
def spread(values: Sequence[float]) -> dict[str, float]:
    """median, min, p25, p75, max (numpy's linear percentiles) of per-round values."""
    import numpy as np

    low, p25, median, p75, high = np.percentile(np.asarray(values, float), [0, 25, 50, 75, 100])
    return {"median": float(median), "min": float(low), "p25": float(p25), "p75": float(p75),
            "max": float(high)}


def round_medians(times: dict[Key, list[list[float]]]) -> dict[Key, list[float]]:
    import numpy as np

    return {key: [float(np.median(runs)) for runs in per_round] for key, per_round in
            times.items()}


def summarize(times: dict[Key, list[list[float]]], reference: str = REFERENCE,
              peers: Sequence[str] = PEERS) -> dict:
    """Per-round figures summarized over rounds (``spread``): latency of each (mode, threads);
    each mode's 1T / 2T speed-up; ``reference`` over each peer at each thread count (the best
    peer: the one with the lowest median latency there); every other non-peer mode over
    ``reference``. Each per-round value pairs figures of the same round."""
    medians = round_medians(times)
    modes = list(dict.fromkeys(mode for mode, _ in medians))
    threads = sorted({t for _, t in medians})

    def ratios(a: Key, b: Key) -> list[float]:
        return [x / y for x, y in zip(medians[a], medians[b], strict=True)]

    summary: dict = {"latency_ms": [], "speedup": [], "vs_peer": [], "vs_reference": []}
    for key, values in medians.items():
        summary["latency_ms"].append({"mode": key[0], "threads": key[1], **spread(values)})
    for mode in modes:
        if (mode, 1) in medians and (mode, 2) in medians:
            summary["speedup"].append({"mode": mode, **spread(ratios((mode, 1), (mode, 2)))})
    for t in threads:
        present = [p for p in peers if (p, t) in medians]
        if (reference, t) not in medians or not present:
            continue
        best = min(present, key=lambda p, t=t: spread(medians[(p, t)])["median"])
        for peer in present:
            summary["vs_peer"].append({"threads": t, "peer": peer, "best": peer == best,
                                       **spread(ratios((reference, t), (peer, t)))})
    for mode in modes:
        for t in threads:
            if mode not in (reference, *peers) and (mode, t) in medians and \
                    (reference, t) in medians:
                summary["vs_reference"].append(
                    {"mode": mode, "threads": t, **spread(ratios((mode, t), (reference, t)))})
    return summary


def format_report(summary: dict, reference: str = REFERENCE) -> str:
    def cells(row: dict, digits: int) -> str:
        return "".join(f"{row[k]:>8.{digits}f}" for k in ("median", "min", "p25", "p75", "max"))

    head = f"{'median':>8}{'min':>8}{'p25':>8}{'p75':>8}{'max':>8}"
    lines = [f"latency (ms): a round's figure is the median of its timed runs\n"
             f"{'mode':<26}{'threads':>8}{head}"]
    lines += [f"{r['mode']:<26}{r['threads']:>8}{cells(r, 2)}" for r in summary["latency_ms"]]
    if summary["speedup"]:
        lines.append(f"\n2-thread speed-up (1T ms / 2T ms, per round; 2.00 = linear)\n"
                     f"{'mode':<34}{head}")
        lines += [f"{r['mode']:<34}{cells(r, 3)}" for r in summary["speedup"]]
    if summary["vs_peer"]:
        lines.append(f"\n{reference} / peer float32 (per round; * = best peer: lowest median "
                     f"there)\n{'peer':<26}{'threads':>8}{head}")
        lines += [f"{(r['peer'] + (' *' if r['best'] else '')):<26}{r['threads']:>8}"
                  f"{cells(r, 3)}" for r in summary["vs_peer"]]
    if summary["vs_reference"]:
        lines.append(f"\nmode / {reference} (per round)\n{'mode':<26}{'threads':>8}{head}")
        lines += [f"{r['mode']:<26}{r['threads']:>8}{cells(r, 3)}"
                  for r in summary["vs_reference"]]
    return "\n".join(lines)


def plot(measurement: Measurement, reference: str, peers: Sequence[str], path: Path,
         title: str) -> bool:
    """Box plots of the per-round ratios (speed-ups, ours / best peer, modes / ours); False
    when matplotlib is not installed."""
    if importlib.util.find_spec("matplotlib") is None:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from levit_tf.utils.files import atomic_path

    medians = round_medians(measurement.times)
    summary = summarize(measurement.times, reference, peers)

    def ratio(a: Key, b: Key) -> list[float]:
        return [x / y for x, y in zip(medians[a], medians[b], strict=True)]

    panels = [
        ("2-thread speed-up (1T / 2T)", (1.0, 2.0),
         {r["mode"]: ratio((r["mode"], 1), (r["mode"], 2)) for r in summary["speedup"]}),
        (f"{reference} / best peer float32", (0.9, 1.0),
         {f"vs {r['peer']}\n{r['threads']}T": ratio((reference, r["threads"]),
                                                     (r["peer"], r["threads"]))
          for r in summary["vs_peer"] if r["best"]}),
        (f"mode / {reference}", (1.0,),
         {f"{r['mode'].removeprefix('levit-tf ')}\n{r['threads']}T":
          ratio((r["mode"], r["threads"]), (reference, r["threads"]))
          for r in summary["vs_reference"]}),
    ]
    panels = [p for p in panels if p[2]]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 5.5), squeeze=False)
    for ax, (name, lines, data) in zip(axes[0], panels, strict=True):
        ax.boxplot(list(data.values()), whis=(0, 100))
        ax.set_xticks(range(1, len(data) + 1), list(data), rotation=30, ha="right", fontsize=8)
        for line in lines:
            ax.axhline(line, color="gray", linestyle="--", linewidth=1)
        ax.set_title(name, fontsize=10)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path, ".png") as temporary:
        fig.savefig(temporary, dpi=110)
    plt.close(fig)
    return True


# ------------------------------------------------------------------------------- artifacts
def prepare(work: Path, preset: str, modes: Sequence[str],
            progress: Callable[[str], None]) -> dict[str, tuple[str, Path]]:
    """mode -> (runner kind, file) for ``modes``, exported with speed.py's functions from the
    same randomized weights into ``work`` (files already there are reused). A peer whose
    runtime is missing is left out, with one line saying why."""
    ours = [m for m in modes if m in OURS]
    wanted: dict[str, tuple[str, Path]] = {m: ("tflite", speed.tflite_path(work, OURS[m]))
                                           for m in ours}
    if "onnxruntime float32" in modes:
        if importlib.util.find_spec("onnxruntime") is None:
            print("skipped onnxruntime float32: onnxruntime is not installed "
                  "(pip install -e '.[bench]')")
        else:
            wanted["onnxruntime float32"] = ("onnxruntime", work / "timm_b1.onnx")
    if "litert-torch float32" in modes:
        if not speed.PEERS_PYTHON.exists():
            print(f"skipped litert-torch float32: no peers venv at {speed.PEERS_PYTHON} "
                  "(make peers)")
        else:
            wanted["litert-torch float32"] = ("tflite", work / "litert-torch tflite.tflite")
    if all(path.exists() for _, path in wanted.values()):
        return wanted
    progress("reference weights")
    model, timm = speed.reference_models(work, preset)
    for mode, (_, path) in wanted.items():
        if path.exists():
            continue
        progress(mode)
        if mode in OURS:
            speed.export_tflite(model, work, OURS[mode])
        elif mode == "onnxruntime float32":
            speed.export_onnx(timm, work)
        else:
            speed.export_litert_torch(work, preset)
    return wanted


# ------------------------------------------------------------------------------- main
def writable_out(out: Path, script: str) -> None:
    """Creates the ``--out`` folder if needed; one line and exit 1 when it cannot be written."""
    from levit_tf.utils.files import check_writable_dir

    try:
        out.mkdir(parents=True, exist_ok=True)
        check_writable_dir(out)
    except (OSError, ValueError) as err:
        sys.exit(f"{script}: --out {out}: {err}")


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="levit-128S", choices=sorted(speed.TIMM_NAMES))
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--threads", nargs="+", type=positive, default=[1, 2])
    parser.add_argument("--rounds", type=positive, default=200)
    parser.add_argument("--runs", type=positive, default=20, help="timed runs per turn")
    parser.add_argument("--turn-warmup", type=int, default=2, help="untimed runs per turn")
    parser.add_argument("--warmup", type=int, default=20, help="untimed runs after loading")
    parser.add_argument("--settle-ms", type=float, default=20.0, help="idle before each turn")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, help="keep (and reuse) the exported models here")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--serve", choices=sorted(RUNNERS), help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cpu-options", type=json.loads, default={}, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.model, args.threads[0], args.warmup, args.cpu_options)
        return

    from tqdm import tqdm

    from levit_tf.utils.cpu_features import cpu_model, int8_capability
    from levit_tf.utils.files import atomic_write_text

    writable_out(args.out, "thread_scaling")
    machine = (f"{cpu_model()}, {os.cpu_count()} cores, {int8_capability()}, "
               f"Python {platform.python_version()}")
    print(f"machine: {machine}")
    load_before, started = os.getloadavg(), time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        work = (args.work or Path(tmp)) / args.preset
        work.mkdir(parents=True, exist_ok=True)
        with tqdm(desc="exporting", bar_format="{desc}: {postfix} [{elapsed}]") as bar:
            files = prepare(work, args.preset, args.modes, bar.set_postfix_str)
        prepared = time.monotonic()
        try:
            with tqdm(total=args.rounds, desc="rounds") as bar:
                bar.set_postfix_str(f"starting {len(files) * len(args.threads)} workers")
                measurement = measure(
                    files, args.threads, args.rounds, args.runs, warmup=args.warmup,
                    turn_warmup=args.turn_warmup, seed=args.seed,
                    settle_s=args.settle_ms / 1000, progress=lambda: bar.update())
        except WorkerError as err:
            sys.exit(f"thread_scaling: {err}")
    load = (f"load average {', '.join(f'{x:.2f}' for x in load_before)} before, "
            f"{', '.join(f'{x:.2f}' for x in os.getloadavg())} after; exports "
            f"{prepared - started:.0f} s, workers and rounds {time.monotonic() - prepared:.0f} s")
    settings = (f"{args.preset} 224 px, batch 1; {args.rounds} rounds x {args.runs} timed runs "
                f"(+{args.turn_warmup} untimed) per worker per round, one worker at a time in a "
                f"seeded random order (seed {args.seed}); spread = min / p25 / p75 / max over "
                "rounds")
    summary = summarize(measurement.times)
    origin = measurement.turns[0][0][0]
    report = f"machine: {machine}, {load}\n{settings}\n\n{format_report(summary)}\n"
    print("\n" + report)
    workers = [{"mode": mode, "threads": t, "file": files[mode][1].name, **info}
               for (mode, t), info in measurement.workers.items()]
    data = {"machine": machine, "load": load, "settings": {
                "preset": args.preset, "rounds": args.rounds, "runs": args.runs,
                "turn_warmup": args.turn_warmup, "warmup": args.warmup,
                "settle_ms": args.settle_ms, "seed": args.seed},
            "workers": workers, "summary": summary,
            "orders": [[label(key) for key in order] for order in measurement.orders],
            "times_ms": {label(key): rounds for key, rounds in measurement.times.items()},
            "turns_s": [[[round(a - origin, 4), round(b - origin, 4)] for a, b in spans]
                        for spans in measurement.turns]}
    atomic_write_text(args.out / "thread_scaling.json", json.dumps(data, indent=1))
    atomic_write_text(args.out / "thread_scaling.txt", report)
    written = [args.out / "thread_scaling.json", args.out / "thread_scaling.txt"]
    if plot(measurement, REFERENCE, PEERS, args.out / "thread_scaling.png",
            f"{args.preset}, batch 1, {args.rounds} rounds x {args.runs} runs; {cpu_model()}, "
            f"{os.cpu_count()} cores, {int8_capability()}"):
        written.append(args.out / "thread_scaling.png")
    else:
        print("no plot: matplotlib is not installed")
    print(f"wrote {', '.join(map(str, written))}")


if __name__ == "__main__":
    main()
