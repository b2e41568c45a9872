"""``levit-tf verify --arm``: a .tflite file on emulated ARM CPUs beside the x86 LiteRT run.

Per (file, profile): the guest (``guest.py`` in the aarch64 python under qemu-user) runs the file
on the same input tensors as x86; reported are XNNPACK partitions and ops left on builtin kernels
(both must equal x86's, and XNNPACK must have taken part of the graph: a silent fallback to the
builtin kernels fails), max |logit difference| and top-1 agreement against x86 and against
Keras, and the ARM kernel families in qemu's instruction log (``kernels``). Emulated time is not
speed and is not reported.

Bounds against x86 (``bound``): float32 1e-4 of the largest |x86 logit|; int8 / int16x8 one
step of the output's quantization scale; dynamic 1e-4 relative (x86 and ARM run the same
int8 x int8 -> int32 products, only the float rescaling differs); float16 ``FLOAT16_BOUND``
relative (ARM fp16 kernels compute in half precision where x86 computes in float32).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from levit_tf.tflite.arm import kernels
from levit_tf.tflite.arm.profiles import Profile
from levit_tf.tflite.arm.runtime import Runtime
from levit_tf.tflite.runtime import TFLiteModel, xnnpack_coverage

GUEST = Path(__file__).with_name("guest.py")
FLOAT32_BOUND = 1e-4
DYNAMIC_BOUND = 1e-4
FLOAT16_BOUND = 2e-2  # measured: see tests/tflite/test_arm.py


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
    top1_x86: float
    max_diff_keras: float | None
    top1_keras: float | None
    x86_top1_keras: float | None
    families: dict[str, int]
    expected: tuple[str, ...] = ()
    forbidden: tuple[str, ...] = ()
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
    details = {int(t["index"]): t for t in model.interpreter.get_tensor_details()}
    for op in model.interpreter._get_ops_details():
        if op["op_name"] == "DEQUANTIZE" and output in [int(t) for t in op["outputs"]]:
            return float(details[int(op["inputs"][0])]["quantization"][0])
    return 0.0


def bound(model: TFLiteModel, x86_logits: np.ndarray) -> float:
    """The allowed max |ARM - x86 logit| for the file's quantization mode."""
    mode = model.metadata.get("quantization", "float32")
    scale = float(np.abs(x86_logits).max())
    if mode in ("int8", "int16x8"):
        return output_step(model) * (1 + 1e-6)
    if mode == "float16":
        return FLOAT16_BOUND * scale
    return (DYNAMIC_BOUND if mode == "dynamic" else FLOAT32_BOUND) * scale


def run_guest(runtime: Runtime, profile: Profile, path: Path, inputs: np.ndarray,
              timeout: float = 900) -> tuple[np.ndarray, dict, Counter]:
    """Raw outputs (N, ...), coverage dict and kernel family counts of ``path`` on ``inputs``
    in the model's input dtype, under qemu's ``profile.cpu``."""
    with tempfile.TemporaryDirectory(prefix="levit-arm-") as tmp:
        tmp_path = Path(tmp)
        np.save(tmp_path / "in.npy", inputs)
        log = tmp_path / "in_asm.log"
        command = runtime.command(profile.cpu, [str(GUEST), str(Path(path).resolve()),
                                                str(tmp_path / "in.npy"), str(tmp_path / "out.npy"),
                                                str(tmp_path / "coverage.json")], log)
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
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
    if run.top1_x86 < 1.0:
        failures.append(f"top-1 vs x86 {run.top1_x86:.1%}")
    if run.top1_keras is not None and run.x86_top1_keras is not None \
            and run.top1_keras < run.x86_top1_keras:
        failures.append(f"top-1 vs Keras {run.top1_keras:.1%} < x86's {run.x86_top1_keras:.1%}")
    missing = [f for f in run.expected if not run.families.get(f)]
    if missing:
        failures.append(f"no {', '.join(missing)} executed")
    seen = [f for f in run.forbidden if run.families.get(f)]
    if seen:
        failures.append(f"{', '.join(seen)} executed on a CPU without it")
    return failures


def verify_arm(paths: Sequence[str | os.PathLike], images: np.ndarray,
               profiles: Sequence[Profile], runtime: Runtime,
               keras_logits: np.ndarray | None = None,
               progress: Callable[[str], None] = print) -> list[ArmRun]:
    """Every file on every profile. ``images``: normalized (N, H, W, 3) (converted per file to
    its input domain); ``keras_logits`` (N, num_labels) of the float Keras model, optional."""
    from levit_tf.tflite.report import to_input_domain

    runs = []
    for path in paths:
        model = TFLiteModel(path)
        mode = model.metadata.get("quantization", "unknown")
        domain = to_input_domain(images, model.input_mode)
        inputs = np.stack([model._quantize_input(image[None])[0] for image in domain])
        x86 = model(domain)
        coverage = xnnpack_coverage(path)
        limit = bound(model, x86)
        for profile in profiles:
            progress(f"  {Path(path).name} on {profile.name} ({profile.cpu}, qemu) ...")
            raw, arm_coverage, families = run_guest(runtime, profile, Path(path), inputs)
            logits = np.stack([model._dequantize_output(o[None])[0] for o in raw])
            diff = float(np.abs(logits.astype(np.float64) - x86).max())
            run = ArmRun(
                path=str(path), quantization=mode, profile=profile.name, cpu=profile.cpu,
                partitions=arm_coverage["partitions"], x86_partitions=coverage.partitions,
                builtin_ops=arm_coverage["builtin_ops"], x86_builtin_ops=dict(
                    coverage.builtin_ops), max_diff_x86=diff,
                relative_diff_x86=diff / max(float(np.abs(x86).max()), 1e-30), bound=limit,
                top1_x86=_top1(logits, x86),
                max_diff_keras=None if keras_logits is None else float(
                    np.abs(logits.astype(np.float64) - keras_logits).max()),
                top1_keras=None if keras_logits is None else _top1(logits, keras_logits),
                x86_top1_keras=None if keras_logits is None else _top1(x86, keras_logits),
                families=dict(families), expected=profile.expected.get(mode, ()),
                forbidden=profile.forbidden)
            run.failures = _failures(run)
            runs.append(run)
    return runs


def format_runs(runs: Sequence[ArmRun]) -> str:
    """One row per (file, profile); 'x86' columns are what the ARM run is checked against."""
    header = (f"{'file':<24}{'mode':<9}{'profile':<12}{'parts':>9}{'max|d| x86':>12}"
              f"{'bound':>10}{'top-1':>7}{'max|d| Keras':>13}{'top-1 K':>8}  "
              "ARM kernels executed / builtin ops / verdict")
    rows = [header]
    for r in runs:
        keras_diff = f"{r.max_diff_keras:>13.3g}" if r.max_diff_keras is not None else f"{'-':>13}"
        keras_top = f"{r.top1_keras:>8.0%}" if r.top1_keras is not None else f"{'-':>8}"
        builtin = ", ".join(f"{k} x{v}" for k, v in sorted(r.builtin_ops.items())) or "none"
        verdict = "ok" if r.ok else "FAIL: " + "; ".join(r.failures)
        rows.append(f"{Path(r.path).name[:23]:<24}{r.quantization:<9}{r.profile:<12}"
                    f"{f'{r.partitions}/{r.x86_partitions}':>9}{r.max_diff_x86:>12.3g}"
                    f"{r.bound:>10.3g}{r.top1_x86:>7.0%}{keras_diff}{keras_top}  "
                    f"{kernels.describe(Counter(r.families))} / builtin: {builtin} / {verdict}")
    return "\n".join(rows)
