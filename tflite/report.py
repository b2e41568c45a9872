"""Measured facts about an exported .tflite model: size, ops, XNNPACK coverage, latency, fidelity,
and (``gpu=True``) LiteRT's GPU verdict: fully GPU-accelerated or not, the ops it leaves to the
CPU, and the GPU-vs-CPU max |logit difference| at LiteRT's default float16 GPU precision and with
``enforce_f32``.

Fidelity compares the .tflite logits with the Keras float model's on held-out images (normalized
pixel_values; converted to raw RGB for uint8-input models): top-1 agreement, max / mean absolute
logit error, max relative error and mean cosine similarity.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np

from levit_tf.tflite.calibration import to_input_domain
from levit_tf.tflite.runtime import TFLiteModel, xnnpack_coverage
from levit_tf.tflite.verdict import Verdict, judge

__all__ = ["Fidelity", "GpuReport", "TFLiteReport", "build_report", "fidelity", "format_table",
           "gpu_report", "to_input_domain"]


@dataclass
class GpuReport:
    """LiteRT's GPU accelerator on one file (see ``compiled.GpuStatus``) and its logits against
    the CPU's (XNNPACK) on ``images`` inputs: max |difference| at float16 / float32 GPU math."""

    fully_accelerated: bool
    gpu_only_compile: bool
    litert_fully_accelerated: bool
    fallback: list[tuple[str, str]]
    adapter: str
    images: int
    max_diff_fp16: float
    max_diff_f32: float
    max_abs_logit: float = float("nan")  # of the CPU logits: the scale of the differences
    error: str = ""  # why LiteRT could not run it on the GPU ("" = it ran)

    @property
    def fallback_ops(self) -> list[str]:
        return sorted({op for op, _ in self.fallback})


def gpu_report(path: str | os.PathLike, inputs: np.ndarray) -> GpuReport:
    """Compiles ``path`` for the GPU (float16 and ``enforce_f32``) and the CPU and compares their
    logits on ``inputs`` (already in the file's input domain). Raises ``GpuUnavailable``."""
    cpu = TFLiteModel(path)(inputs)
    gpu16 = TFLiteModel(path, accelerator="gpu")
    status = gpu16.gpu_status
    report = GpuReport(status.fully_accelerated, status.gpu_only,
                       status.litert_fully_accelerated, status.fallback, status.adapter,
                       len(inputs), float("nan"), float("nan"), float(np.abs(cpu).max()))
    try:
        report.max_diff_fp16 = float(np.abs(gpu16(inputs) - cpu).max())
        gpu32 = TFLiteModel(path, accelerator="gpu", enforce_f32=True)
        report.max_diff_f32 = float(np.abs(gpu32(inputs) - cpu).max())
    except RuntimeError as err:  # LiteRT's multi-line text: its last line says why
        report.error = str(err).strip().splitlines()[-1].strip(" └")
    return report


@dataclass
class Fidelity:
    images: int
    top1_agreement: float
    max_abs_error: float
    mean_abs_error: float
    relative_error: float
    cosine_similarity: float


@dataclass
class TFLiteReport:
    path: str
    quantization: str
    size_mb: float
    ops: dict[str, int]
    builtin_ops: dict[str, int]  # ops that stay outside XNNPACK
    xnnpack_fraction: float
    partitions: int
    latency_ms: dict[int, float] = field(default_factory=dict)  # threads -> median ms
    fidelity: Fidelity | None = None
    mismatch: str = ""  # why the file is not an export of the Keras model ("" = it fits)
    gpu: GpuReport | None = None
    verdict: Verdict | None = None  # pass / fail against the mode's bound (with fidelity)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["verdict"] = None if self.verdict is None else self.verdict.as_dict()
        return data


def fidelity(reference_logits: np.ndarray, logits: np.ndarray) -> Fidelity:
    reference_logits = np.asarray(reference_logits, np.float64)
    logits = np.asarray(logits, np.float64)
    error = np.abs(logits - reference_logits)
    cosine = np.sum(logits * reference_logits, axis=1) / (
        np.linalg.norm(logits, axis=1) * np.linalg.norm(reference_logits, axis=1) + 1e-30)
    return Fidelity(
        images=len(logits),
        top1_agreement=float(np.mean(logits.argmax(1) == reference_logits.argmax(1))),
        max_abs_error=float(error.max()), mean_abs_error=float(error.mean()),
        relative_error=float(error.max() / np.abs(reference_logits).max()),
        cosine_similarity=float(cosine.mean()))


def build_report(path: str | os.PathLike, keras_model: keras.Model | None = None,
                 images: np.ndarray | None = None, threads: tuple[int, ...] = (1, 2),
                 latency_runs: int = 50, gpu: bool = False,
                 bounds: dict[str, float] | None = None) -> TFLiteReport:
    """Everything measured about one .tflite file; fidelity and the pass / fail verdict
    (``verdict.judge``, ``bounds`` overriding the modes' error bounds) need the Keras model and
    images (normalized, (N, H, W, 3)). ``gpu``: also LiteRT's GPU verdict (on ``images``, else
    on 4 seeded N(0, 1) images)."""
    path = Path(path)
    coverage = xnnpack_coverage(path)
    model = TFLiteModel(path, num_threads=threads[0])
    report = TFLiteReport(
        path=str(path), quantization=model.metadata.get("quantization", "unknown"),
        size_mb=path.stat().st_size / 1e6, ops=dict(coverage.total_ops),
        builtin_ops=dict(coverage.builtin_ops), xnnpack_fraction=coverage.fraction_delegated,
        partitions=coverage.partitions)
    if keras_model is not None:
        report.mismatch = model_mismatch(model, keras_model)
    for count in threads:
        report.latency_ms[count] = TFLiteModel(path, num_threads=count).latency_ms(latency_runs)
    if keras_model is not None and images is not None and not report.mismatch:
        reference = np.asarray(keras_model.predict(images, batch_size=16, verbose=0)["logits"])
        logits = model(to_input_domain(images, model.input_mode))
        report.fidelity = fidelity(reference, logits)
        report.verdict = judge(reference, logits, report.quantization, bounds)
    if gpu:
        sample = images[:8] if images is not None and not report.mismatch else (
            np.random.default_rng(0).normal(size=(4, *model.input_shape[1:])).astype(np.float32))
        report.gpu = gpu_report(path, to_input_domain(sample, model.input_mode))
    return report


_ARCHITECTURE_KEYS = ("hidden_sizes", "num_attention_heads", "depths", "key_dim", "mlp_ratio",
                      "attention_ratio", "num_channels")


def model_mismatch(model: TFLiteModel, keras_model: keras.Model) -> str:
    """Why ``model`` (.tflite) cannot be an export of ``keras_model`` ("" when it can be):
    input size, number of classes, or (from the file's metadata) the architecture."""
    config = getattr(keras_model, "config", None)
    if config is None:
        return ""
    problems = []
    height, width = config.image_hw
    shape = model.input_shape
    if len(shape) != 4 or tuple(shape[1:3]) != (height, width):
        problems.append(f"input {'x'.join(map(str, shape[1:3]))}, model {height}x{width}")
    outputs = int(model.output["shape"][-1])
    if outputs != config.num_labels:
        problems.append(f"{outputs} classes, model {config.num_labels}")
    saved = model.metadata.get("config") or {}
    ours = config.to_dict()
    for key in _ARCHITECTURE_KEYS:
        if key in saved and key in ours and saved[key] != ours[key]:
            problems.append(f"{key} {saved[key]}, model {ours[key]}")
    return "; ".join(problems)


def format_table(reports: list[TFLiteReport]) -> str:
    """One row per report: size, latency per thread count, coverage, fidelity and the verdict
    (logit error / the mode's bound, PASS or FAIL; a failed row's reasons on the next line)."""
    threads = sorted({t for r in reports for t in r.latency_ms})
    header = (f"{'mode':<10}{'size MB':>8}" + "".join(f"{f'{t}T ms':>9}" for t in threads)
              + f"{'XNNPACK':>9}{'parts':>6}{'top-1':>8}{'max|err|':>10}{'mean|err|':>10}"
              f"{'cosine':>9}{'error/bound':>17}{'verdict':>8}  outside XNNPACK")
    rows = [header]
    for r in reports:
        if r.mismatch:
            rows.append(f"{r.quantization:<10}{r.size_mb:>8.1f}  MISMATCH: {r.mismatch}")
            continue
        f, v = r.fidelity, r.verdict
        fid = (f"{f.top1_agreement:>8.2%}{f.max_abs_error:>10.3g}{f.mean_abs_error:>10.3g}"
               f"{f.cosine_similarity:>9.5f}") if f else f"{'-':>8}{'-':>10}{'-':>10}{'-':>9}"
        judged = (f"{f'{v.logit_error:.2g} / {v.bound:g}':>17}{'PASS' if v.passed else 'FAIL':>8}"
                  if v else f"{'-':>17}{'-':>8}")
        outside = ", ".join(f"{k} x{v}" for k, v in sorted(r.builtin_ops.items())) or "none"
        rows.append(f"{r.quantization:<10}{r.size_mb:>8.1f}"
                    + "".join(f"{r.latency_ms.get(t, float('nan')):>9.2f}" for t in threads)
                    + f"{r.xnnpack_fraction:>9.1%}{r.partitions:>6}{fid}{judged}  {outside}")
        if v is not None and not v.passed:
            rows.append(f"  {Path(r.path).name}: {v.summary()}")
        if r.gpu is not None:
            rows.append("  " + format_gpu(r.gpu))
    if any(r.verdict is not None for r in reports):
        rows.append("error = RMS(tflite - keras logits) / std(keras logits); PASS: error within "
                    "the mode's bound and top-1 kept on every decisive image (levit-tf verify "
                    "--help)")
    if any(r.quantization not in ("float32", "float16") for r in reports):
        # int8 speed depends on the CPU's int8 dot-product instructions: name them
        from levit_tf.utils.cpu_features import int8_capability

        rows.append(f"CPU: {int8_capability()}")
    return "\n".join(rows)


def format_gpu(g: GpuReport) -> str:
    """One line: LiteRT's GPU verdict, fallback ops, GPU-vs-CPU differences."""
    verdict = ("fully GPU-accelerated" if g.fully_accelerated
               else "NOT fully GPU-accelerated (CPU runs: "
               + (", ".join(f"{op} ({why})" for op, why in g.fallback) or "ops LiteRT did not name")
               + ")")
    if g.error:
        return (f"GPU [{g.adapter or 'LiteRT GPU'}]: compiles "
                f"{'fully' if g.fully_accelerated else 'partly'} on the GPU, but LiteRT could "
                f"not run it: {g.error}")
    return (f"GPU [{g.adapter or 'LiteRT GPU'}]: {verdict}; GPU vs CPU max|logit diff| on "
            f"{g.images} images: fp16 {g.max_diff_fp16:.3g}, enforce_f32 {g.max_diff_f32:.3g} "
            f"(max|logit| {g.max_abs_logit:.3g})")
