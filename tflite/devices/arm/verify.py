"""``levit-tf verify --arm``: a .tflite file on emulated ARM CPUs beside the x86 LiteRT run.

Per (file, profile): the guest (``guest.py`` in the aarch64 python under qemu-user) runs the file
on the same input tensors as x86; reported are XNNPACK partitions and ops left on builtin kernels
(both must equal x86's, and XNNPACK must have taken part of the graph: a silent fallback to the
builtin kernels fails), max |logit difference| and top-1 agreement against x86 and against
Keras, and the ARM kernel families in qemu's instruction log (``kernels``). Emulated time is not
speed and is not reported.

Bounds against x86 (``bound``): float32 1e-4 of the largest |x86 logit|; int8 / int16x8 one
step of the output's quantization scale (the scale of the tensor the final DEQUANTIZE reads)
when XNNPACK runs every op in integer (measured: bit-exact); int8 with ops kept in float (the
default export: the attention core) twice the x86 run's own quantization error max |x86 - Keras|,
and every op replayed alone from x86's activations (``op_replay``) must match x86 (integer ops
equal, float ops within ``op_replay.FLOAT_OP_BOUND``): XNNPACK's float SOFTMAX differs between
ISAs by rounding (measured <= 4e-7 relative), a later QUANTIZE can turn that into a one-step flip
of an activation, and the network carries the flip to the logits (measured 17 output steps on a
random LeViT-128S whose ARM and x86 runs are each ~12 steps from Keras); ops left on builtin
kernels (whose aarch64 int8 implementations round differently from x86's: measured up to ~9
output steps on a plain int8 LeViT): the x86 run's own quantization error max |x86 - Keras|;
dynamic: the x86 run's own quantization error, max |x86 - Keras| (XNNPACK's dynamic-range
kernels quantize activations differently on x86 and ARM, so the two differ by up to a fraction
of the dynamic-quantization error; 1e-4 relative without Keras logits); float16
``FLOAT16_BOUND`` of the largest |x86 logit| (ARM's fp16 kernels compute in half precision where
x86 computes in float32). Top-1: on every image the ARM class equals x86's, or, where x86 and
Keras disagree (a near-tie the quantization flips), one of the two, or, where Keras's top-2
margin is below the x86 file's own error on that image (a tie no run of this file can decide),
one of Keras's top two.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from levit_tf.tflite.devices.arm import kernels
from levit_tf.tflite.devices.arm.op_replay import Replay, replay
from levit_tf.tflite.devices.arm.profiles import Profile
from levit_tf.tflite.devices.arm.runtime import Runtime
from levit_tf.tflite.runtime import (
    DelegateCoverage,
    TFLiteModel,
    new_interpreter,
    xnnpack_coverage,
)

GUEST = Path(__file__).with_name("guest.py")
FLOAT32_BOUND = 1e-4
DYNAMIC_BOUND = 1e-4
FLOAT16_BOUND = 5e-2  # measured 0.9% (small LeViT) and 2.1% (LeViT-128S, 224 px) on cortex-a76


@dataclass
class ArmRun:
    """One .tflite file on one emulated CPU, compared with x86 and Keras."""

    path: str
    quantization: str
    profile: str
    cpu: str
    partitions: int
    x86_partitions: int
    builtin_ops: dict[str, int]
    x86_builtin_ops: dict[str, int]
    max_diff_x86: float
    relative_diff_x86: float
    bound: float  # on max_diff_x86
    bound_rule: str  # how the bound was set (see the module docstring)
    top1_x86: float
    top1_ok: bool  # every image: ARM class == x86's, or one of x86's / Keras's where they differ
    max_diff_keras: float | None
    top1_keras: float | None
    x86_top1_keras: float | None
    families: dict[str, int]
    expected: tuple[str, ...] = ()
    forbidden: tuple[str, ...] = ()
    replay: Replay | None = None  # every op alone from x86's activations (float-op int8 files)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def output_step(model: TFLiteModel) -> float:
    """The quantization scale of the model's output: of the output tensor if it is integer,
    else of the tensor its final DEQUANTIZE reads; 0.0 if none."""
    scale = model.output["quantization"][0]
    if scale:
        return float(scale)
    output = int(model.output["index"])
    interpreter = new_interpreter(model.path)  # the op list: CompiledModel has none
    details = {int(t["index"]): t for t in interpreter.get_tensor_details()}
    for op in interpreter._get_ops_details():
        if op["op_name"] == "DEQUANTIZE" and output in [int(t) for t in op["outputs"]]:
            return float(details[int(op["inputs"][0])]["quantization"][0])
    return 0.0


def bound(model: TFLiteModel, x86_logits: np.ndarray, keras_logits: np.ndarray | None = None,
          builtin_ops: dict[str, int] | None = None) -> tuple[float, str]:
    """The allowed max |ARM - x86 logit| for the file's quantization mode, and its rule."""
    mode = model.metadata.get("quantization", "float32")
    scale = float(np.abs(x86_logits).max())
    quant_error = (None if keras_logits is None
                   else float(np.abs(x86_logits - keras_logits).max()))
    if mode in ("int8", "int16x8"):
        step = output_step(model)
        if builtin_ops and quant_error is not None and quant_error > step:
            return quant_error, "x86 quant error"
        if needs_replay(model) and quant_error is not None and 2 * quant_error > step:
            return 2 * quant_error, "2x x86 quant err"
        return step * (1 + 1e-6), "1 step"
    if mode == "float16":
        return FLOAT16_BOUND * scale, f"{FLOAT16_BOUND:g} rel"
    if mode == "dynamic" and quant_error is not None:
        return quant_error, "x86 quant error"
    return FLOAT32_BOUND * scale, f"{FLOAT32_BOUND:g} rel"


def needs_replay(model: TFLiteModel) -> bool:
    """An int8 file with ops kept in float: its float rounding differs between ISAs, so it is
    checked op by op (``op_replay``) as well as end to end."""
    return (model.metadata.get("quantization") == "int8"
            and bool(model.metadata.get("float_ops")))


def run_guest(runtime: Runtime, profile: Profile, path: Path, inputs: np.ndarray,
              timeout: float | None = None) -> tuple[np.ndarray, dict, Counter]:
    """Raw outputs (N, ...), coverage dict and kernel family counts of ``path`` on ``inputs``
    in the model's input dtype, under qemu's ``profile.cpu``."""
    with tempfile.TemporaryDirectory(prefix="levit-arm-") as tmp:
        tmp_path = Path(tmp)
        np.save(tmp_path / "in.npy", inputs)
        log = tmp_path / "in_asm.log"
        command = runtime.command(profile.cpu, [str(GUEST), str(Path(path).resolve()),
                                                str(tmp_path / "in.npy"), str(tmp_path / "out.npy"),
                                                str(tmp_path / "coverage.json")], log)
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                  env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{Path(path).name} on {profile.name}: no result after "
                               f"{timeout:.0f} s") from None
        if done.returncode:
            tail = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
            raise RuntimeError(f"{Path(path).name} on {profile.name} ({profile.cpu}) failed: "
                               f"{tail}")
        coverage = json.loads((tmp_path / "coverage.json").read_text())
        return np.load(tmp_path / "out.npy"), coverage, kernels.count_log(log)


def _top1(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(a.argmax(1) == b.argmax(1)))


def _failures(run: ArmRun) -> list[str]:
    failures = []
    if run.partitions == 0 or run.partitions != run.x86_partitions:
        failures.append(f"{run.partitions} XNNPACK partitions (x86: {run.x86_partitions})")
    if run.builtin_ops != run.x86_builtin_ops:
        failures.append(f"builtin kernels {run.builtin_ops} (x86: {run.x86_builtin_ops})")
    if not run.max_diff_x86 <= run.bound:
        failures.append(f"max |diff| vs x86 {run.max_diff_x86:.3g} > {run.bound:.3g}")
    if not run.top1_ok:
        failures.append(f"top-1 vs x86 {run.top1_x86:.1%}")
    missing = [f for f in run.expected if not run.families.get(f)]
    if missing:
        failures.append(f"no {', '.join(missing)} executed")
    seen = [f for f in run.forbidden if run.families.get(f)]
    if seen:
        failures.append(f"{', '.join(seen)} executed on a CPU without it")
    if run.replay is not None:
        failures.extend(f"op replay: {failure}" for failure in run.replay.failures)
    return failures


def _top1_ok(logits: np.ndarray, x86: np.ndarray, keras_logits: np.ndarray | None) -> bool:
    arm, reference = logits.argmax(1), x86.argmax(1)
    if keras_logits is None:
        return bool(np.all(arm == reference))
    float_class = keras_logits.argmax(1)
    agree = reference == float_class
    ok = np.where(agree, arm == reference, (arm == reference) | (arm == float_class))
    top2 = np.argsort(keras_logits, axis=1)[:, -2:]
    margin = np.take_along_axis(keras_logits, top2[:, 1:], 1) - np.take_along_axis(
        keras_logits, top2[:, :1], 1)
    tie = margin[:, 0] < np.abs(x86 - keras_logits).max(axis=1)
    return bool(np.all(ok | (tie & np.any(top2 == arm[:, None], axis=1))))


@dataclass
class _X86:
    model: TFLiteModel
    inputs: np.ndarray  # in the file's input dtype
    logits: np.ndarray
    coverage: DelegateCoverage
    bound: tuple[float, str]


def verify_arm(paths: Sequence[str | os.PathLike], images: np.ndarray,
               profiles: Sequence[Profile], runtime: Runtime,
               keras_logits: np.ndarray | None = None,
               progress: Callable[[str], None] = print, jobs: int | None = None) -> list[ArmRun]:
    """Every file on every profile, ``jobs`` qemu processes at a time (default: the CPUs).
    ``images``: normalized (N, H, W, 3) (converted per file to its input domain);
    ``keras_logits`` (N, num_labels) of the float Keras model, optional."""
    from levit_tf.tflite.report import to_input_domain

    x86: dict[str, _X86] = {}
    for path in map(str, paths):
        model = TFLiteModel(path)
        domain = to_input_domain(images, model.input_mode)
        logits = model(domain).astype(np.float64)
        coverage = xnnpack_coverage(path)
        x86[path] = _X86(model, np.stack([model._quantize_input(i[None])[0] for i in domain]),
                         logits, coverage,
                         bound(model, logits, keras_logits, dict(coverage.builtin_ops)))
    jobs_list = [(path, profile) for path in x86 for profile in profiles]
    started = time.perf_counter()

    def job(item: tuple[str, Profile]) -> tuple[np.ndarray, dict, Counter]:
        path, profile = item
        result = run_guest(runtime, profile, Path(path), x86[path].inputs)
        progress(f"  {Path(path).name} on {profile.name} ({profile.cpu}): done "
                 f"[{time.perf_counter() - started:.0f} s]")
        return result

    progress(f"  {len(jobs_list)} emulated runs, {jobs or os.cpu_count()} at a time")
    with ThreadPoolExecutor(max_workers=jobs or os.cpu_count()) as pool:
        results = list(pool.map(job, jobs_list))
    replays: dict[str, list[Replay]] = {}
    for path, ref in x86.items():
        if needs_replay(ref.model):
            progress(f"  {Path(path).name}: every op alone on x86 and "
                     f"{', '.join(p.name for p in profiles)}")
            replays[path] = replay(path, ref.inputs[:1], profiles, runtime, jobs=jobs)
    runs = []
    for (path, profile), (raw, arm_coverage, families) in zip(jobs_list, results, strict=True):
        ref = x86[path]
        mode = ref.model.metadata.get("quantization", "unknown")
        logits = np.stack([ref.model._dequantize_output(o[None])[0] for o in raw])
        logits = logits.astype(np.float64)
        diff = float(np.abs(logits - ref.logits).max())
        run = ArmRun(
            path=path, quantization=mode, profile=profile.name, cpu=profile.cpu,
            partitions=arm_coverage["partitions"], x86_partitions=ref.coverage.partitions,
            builtin_ops=arm_coverage["builtin_ops"],
            x86_builtin_ops=dict(ref.coverage.builtin_ops), max_diff_x86=diff,
            relative_diff_x86=diff / max(float(np.abs(ref.logits).max()), 1e-30),
            bound=ref.bound[0], bound_rule=ref.bound[1], top1_x86=_top1(logits, ref.logits),
            top1_ok=_top1_ok(logits, ref.logits, keras_logits),
            max_diff_keras=None if keras_logits is None else float(
                np.abs(logits - keras_logits).max()),
            top1_keras=None if keras_logits is None else _top1(logits, keras_logits),
            x86_top1_keras=None if keras_logits is None else _top1(ref.logits, keras_logits),
            families=dict(families), expected=profile.expected.get(mode, ()),
            forbidden=profile.forbidden,
            replay=next((r for r in replays.get(path, ()) if r.profile == profile.name), None))
        run.failures = _failures(run)
        runs.append(run)
    return runs


def format_runs(runs: Sequence[ArmRun]) -> str:
    """One row per (file, profile); 'x86' columns are what the ARM run is checked against."""
    header = (f"{'file':<24}{'mode':<9}{'profile':<12}{'parts':>9}{'max|d| x86':>12}"
              f"{'bound':>10}{'rule':>18}{'top-1':>7}{'max|d| Keras':>13}{'top-1 K':>8}"
              f"{'x86 K':>7}  "
              "ARM kernels executed / builtin ops / op replay (float-op int8) / verdict")
    rows = [header]
    for r in runs:
        keras_diff = f"{r.max_diff_keras:>13.3g}" if r.max_diff_keras is not None else f"{'-':>13}"
        keras_top = f"{r.top1_keras:>8.0%}" if r.top1_keras is not None else f"{'-':>8}"
        x86_top = f"{r.x86_top1_keras:.0%}" if r.x86_top1_keras is not None else "-"
        builtin = ", ".join(f"{k} x{v}" for k, v in sorted(r.builtin_ops.items())) or "none"
        verdict = "ok" if r.ok else "FAIL: " + "; ".join(r.failures)
        rows.append(f"{Path(r.path).name[:23]:<24}{r.quantization:<9}{r.profile:<12}"
                    f"{f'{r.partitions}/{r.x86_partitions}':>9}{r.max_diff_x86:>12.3g}"
                    f"{r.bound:>10.3g}{r.bound_rule:>18}{r.top1_x86:>7.0%}{keras_diff}"
                    f"{keras_top}{x86_top:>7}  "
                    f"{kernels.describe(Counter(r.families))} / builtin: {builtin} / "
                    + (f"{r.replay.summary()} / " if r.replay is not None else "") + verdict)
    return "\n".join(rows)
