"""What loses int8 fidelity, measured: each quantization choice on the real-photo task.

    python -m benchmarks.int8_sensitivity [--work /tmp/int8-fidelity] [--out DIR]

Uses the fine-tuned LeViT-128S, the crops and the calibration rule of ``int8_fidelity.py``
(built there when missing). The converter calibrates once; TFLite's own quantizer (the one
``export`` runs) then quantizes that calibrated graph once per variant:

- activation ranges: the calibration min/max (what ``export`` ships), the range with the least
  mean squared quantization error per tensor ("MSE"), or the 0.01% / 99.99% percentiles;
- op types kept in float on top of the attention core (the default int8's float ops): the stem
  convolutions, the residual adds, the linear layers, or everything but the stem.

Every variant is compared with the Keras model on the held-out crops (top-1 agreement, mean and
max |logit error|), next to ``dynamic``, ``int16x8`` and the Keras model on int8-rounded input.
Per tensor: how much MSE clipping cuts each range and its signal-to-quantization-noise ratio;
per layer: TFLite's ``QuantizationDebugger`` error in units of the layer's scale (rounding alone
gives sqrt(1/12) = 0.29). Writes int8_sensitivity.txt and .png to ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Rounding alone gives a layer error of RMSE / scale = sqrt(1 / 12).
ROUNDING_RMSE_PER_SCALE = (1 / 12) ** 0.5
#: The int8 ops that compute (the others move data and are exact).
ARITHMETIC_OPS = ("CONV_2D", "FULLY_CONNECTED", "ADD", "MEAN", "QUANTIZE")
RANGE_GRID = np.linspace(0.05, 1.0, 96)  # MSE search: fractions of the min/max range


@dataclass
class Variant:
    name: str
    float_ops: tuple[str, ...]  # every op type kept in float
    ranges: str = "minmax"  # minmax | mse | percentile


@dataclass
class Row:
    name: str
    agreement: float  # top-1 agreement with Keras on the held-out crops
    mean_error: float  # mean |logit - Keras logit|
    max_error: float
    reference: bool = False  # a mode or run to compare with, not an int8 variant


# ------------------------------------------------------------------------- calibrated graph


@contextlib.contextmanager
def int8_converter(model, calibration: np.ndarray):
    """The TFLiteConverter ``export`` sets up for int8 (folded graph, normalized input, batch
    1), calibrating on ``calibration`` (N, H, W, 3) normalized images; valid inside the block."""
    import tensorflow as tf

    from levit_tf.export.saved_model import serving_archive
    from levit_tf.tflite import exporter
    from levit_tf.tflite.calibration import representative_dataset
    from levit_tf.tflite.quantization import Quantization, configure

    folded = exporter._inference_model(model, "normalized")
    with tempfile.TemporaryDirectory() as saved_model:
        serving_archive(folded, batch_size=1, probabilities=False,
                        images=False).write_out(saved_model, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model, [exporter.SIGNATURE])
        configure(converter, Quantization.INT8,
                  representative_dataset([image[None] for image in calibration]))
        yield converter


def calibrated_graph(model, calibration: np.ndarray) -> bytes:
    """The float graph ``export`` quantizes in int8 mode, carrying the converter's calibration
    min / max on every activation tensor. ``calibration``: (N, H, W, 3) normalized images."""
    with int8_converter(model, calibration) as converter:
        converter.experimental_mlir_quantizer = True  # as QuantizationDebugger sets it up
        converter._experimental_calibrate_only = True
        return bytes(converter.convert())


def quantize(calibrated: bytes, float_ops: Sequence[str]) -> bytes:
    """Full-int8 model from a calibrated graph, ``float_ops`` kept in float: the quantizer call
    ``export`` makes through ``QuantizationDebugger`` for selective int8."""
    from tensorflow.lite.python import convert

    return bytes(convert.mlir_quantize(calibrated, denylisted_ops=list(float_ops)))


def tensor_ranges(calibrated: bytes) -> dict[str, tuple[float, float]]:
    """Calibration (min, max) of every tensor that has one, by tensor name."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(calibrated))
    ranges = {}
    for tensor in model.subgraphs[0].tensors:
        stats = tensor.quantization
        if stats is not None and stats.min is not None and len(stats.min) == 1:
            ranges[tensor.name.decode()] = (float(stats.min[0]), float(stats.max[0]))
    return ranges


def with_ranges(calibrated: bytes, ranges: dict[str, tuple[float, float]]) -> bytes:
    """``calibrated`` with the (min, max) of the tensors named in ``ranges`` replaced."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(calibrated))
    known = set()
    for tensor in model.subgraphs[0].tensors:
        name = tensor.name.decode()
        if name in ranges:
            low, high = ranges[name]
            tensor.quantization.min = np.array([low], np.float32)
            tensor.quantization.max = np.array([high], np.float32)
            known.add(name)
    if set(ranges) - known:
        raise KeyError(f"no calibrated tensors named {sorted(set(ranges) - known)[:3]}")
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def activations(calibrated: bytes, images: np.ndarray) -> dict[str, np.ndarray]:
    """Every op output of the float graph on ``images`` (N, H, W, 3), and the graph input, by
    tensor name: (N, *shape) each."""
    from levit_tf.tflite.devices.arm.op_replay import expose_all
    from levit_tf.tflite.runtime import new_interpreter

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "all_outputs.tflite"
        path.write_bytes(expose_all(calibrated))
        interpreter = new_interpreter(path)
    source = interpreter.get_input_details()[0]
    outputs = interpreter.get_output_details()
    values: dict[str, list[np.ndarray]] = {d["name"]: [] for d in outputs}
    values[source["name"]] = list(images)
    for image in images:
        interpreter.set_tensor(source["index"], image[None].astype(np.float32))
        interpreter.invoke()
        for detail in outputs:
            values[detail["name"]].append(interpreter.get_tensor(detail["index"])[0].copy())
    return {name: np.stack(v) for name, v in values.items()}


# ------------------------------------------------------------------------- range choices


def fake_quantize(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """``values`` after int8 asymmetric quantize -> dequantize with the range [low, high]
    (widened to hold 0, as TFLite does)."""
    low, high = min(low, 0.0), max(high, 0.0)
    scale = (high - low) / 255 or np.finfo(np.float32).tiny
    zero_point = np.round(-128 - low / scale)
    return (np.clip(np.round(values / scale) + zero_point, -128, 127) - zero_point) * scale


def quantization_mse(values: np.ndarray, low: float, high: float) -> float:
    """Mean squared error of ``fake_quantize`` on ``values``."""
    return float(np.mean((fake_quantize(values, low, high) - values) ** 2))


def mse_range(values: np.ndarray, low: float, high: float,
              grid: np.ndarray = RANGE_GRID) -> tuple[float, float]:
    """The fraction of [low, high] (from ``grid``) with the least quantization MSE on
    ``values``; clipping trades the outliers' error for finer steps everywhere else."""
    sample = values.ravel()
    if sample.size > 200_000:
        sample = np.random.default_rng(0).choice(sample, 200_000, replace=False)
    errors = [quantization_mse(sample, f * low, f * high) for f in grid]
    best = float(grid[int(np.argmin(errors))])
    return best * low, best * high


def percentile_range(values: np.ndarray, low: float, high: float,
                     percent: float = 0.01) -> tuple[float, float]:
    """The ``percent`` / 100 - ``percent`` percentiles, never wider than [low, high]."""
    return (max(low, float(np.percentile(values, percent))),
            min(high, float(np.percentile(values, 100 - percent))))


def sqnr_db(values: np.ndarray, low: float, high: float) -> float:
    """Signal-to-quantization-noise ratio (dB) of int8 with the range [low, high]."""
    noise = quantization_mse(values, low, high)
    return float(10 * np.log10(np.mean(values.astype(np.float64) ** 2) / max(noise, 1e-30)))


def chosen_ranges(kind: str, ranges: dict[str, tuple[float, float]],
                  values: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    """Every calibrated tensor's range under rule ``kind`` (minmax | mse | percentile)."""
    if kind == "minmax":
        return dict(ranges)
    rule = {"mse": mse_range, "percentile": percentile_range}[kind]
    return {name: rule(values[name], *bounds) if name in values else bounds
            for name, bounds in ranges.items()}


# ------------------------------------------------------------------------- evaluation


def compare(logits: np.ndarray, reference: np.ndarray, name: str, is_reference: bool = False
            ) -> Row:
    return Row(name, float(np.mean(logits.argmax(-1) == reference.argmax(-1))),
               float(np.abs(logits - reference).mean()), float(np.abs(logits - reference).max()),
               is_reference)


def evaluate(model_bytes: bytes, path: Path, images: np.ndarray, reference: np.ndarray,
             name: str) -> tuple[Row, np.ndarray]:
    """The row of the .tflite ``model_bytes`` (written to ``path``) and its logits (N, classes)."""
    from int8_fidelity import predict

    path.write_bytes(model_bytes)
    logits = predict(path, images)
    return compare(logits, reference, name), logits


def top2_margins(logits: np.ndarray) -> np.ndarray:
    """Largest minus second-largest logit of each row: (N, classes) -> (N,)."""
    top = np.sort(logits, axis=-1)
    return top[:, -1] - top[:, -2]


def margin_report(reference: np.ndarray, logits: np.ndarray) -> str:
    """Which held-out crops a variant flips, by the Keras model's top-2 margin."""
    margins = top2_margins(reference)
    flipped = margins[logits.argmax(-1) != reference.argmax(-1)]
    largest = f"{flipped.max():.3f}" if flipped.size else "-"
    return (f"Keras top-2 margin: 5th percentile {np.percentile(margins, 5):.3f}, median "
            f"{np.median(margins):.3f}; the default int8 flips {flipped.size} crops, the "
            f"largest margin flipped {largest}")


def layer_errors(model, calibration: np.ndarray, float_ops: Sequence[str]) -> list[tuple]:
    """(RMSE / scale, "OP output name") of every quantized arithmetic layer, largest first:
    TFLite's QuantizationDebugger, each layer's int8 output against its float op on the same
    (dequantized) input, so each layer's own error, not what it inherits."""
    import tensorflow as tf

    with int8_converter(model, calibration) as converter:
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=converter.representative_dataset,
            debug_options=tf.lite.experimental.QuantizationDebugOptions(
                denylisted_ops=list(float_ops)))
        debugger.run()
    dump = io.StringIO()
    debugger.layer_statistics_dump(dump)  # the CSV carries each layer's scale
    rows = []
    for layer in csv.DictReader(io.StringIO(dump.getvalue())):
        if layer["op_name"] not in ARITHMETIC_OPS:
            continue  # data movement (reshape, slice, pad...) is exact
        rmse, scale = float(layer["mean_squared_error"]) ** 0.5, float(layer["scale"])
        rows.append((rmse / scale, f"{layer['op_name']} {short_name(layer['tensor_name'])}"))
    return sorted(rows, reverse=True)


# ------------------------------------------------------------------------- report


def short_name(name: str) -> str:
    """A tensor or layer name without the model prefix and fused-op suffixes:
    'levit_..._inference_1/stage1_mlp_9_1/linear_down_1/BiasAdd;...' -> 'stage1_mlp_9_1/...'."""
    first = name.split(";")[0]
    return "logits" if first.startswith("StatefulPartitionedCall") else re.sub(
        r"^[a-z_]*_inference(_\d+)?/", "", first)


def variants(op_types: set[str]) -> list[Variant]:
    """The measured variants; ``op_types``: every op type of the float graph."""
    from levit_tf.tflite import ATTENTION_FLOAT_OPS

    core = tuple(ATTENTION_FLOAT_OPS)
    not_stem = tuple(sorted(op_types - {"CONV_2D"}))
    return [
        Variant("default int8: min/max ranges", core),
        Variant("MSE ranges", core, "mse"),
        Variant("0.01-99.99% percentile ranges", core, "percentile"),
        Variant("+ stem convolutions in float", (*core, "CONV_2D")),
        Variant("+ residual adds in float", (*core, "ADD")),
        Variant("+ linear layers in float", (*core, "FULLY_CONNECTED")),
        Variant("+ adds and linear layers in float", (*core, "ADD", "FULLY_CONNECTED")),
        Variant("only the stem int8", not_stem),
        Variant("only the stem int8, MSE ranges", not_stem, "mse"),
    ]


def producers(model_bytes: bytes) -> dict[str, str]:
    """Tensor name -> the type of the op that writes it (e.g. 'ADD')."""
    from tensorflow.lite.tools import flatbuffer_utils

    from levit_tf.tflite.exporter import builtin_op_name

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_bytes))
    graph = model.subgraphs[0]
    written = {}
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        for index in op.outputs:
            written[graph.tensors[index].name.decode()] = builtin_op_name(
                code.builtinCode, code.deprecatedBuiltinCode)
    return written


def channel_spread(values: np.ndarray) -> float:
    """The largest channel's max |x| over the median channel's (last axis = channels)."""
    peaks = np.abs(values.reshape(-1, values.shape[-1])).max(0)
    return float(peaks.max() / max(float(np.median(peaks)), 1e-12))


def tensor_report(calibrated: bytes, ranges: dict[str, tuple[float, float]],
                  clipped_ranges: dict[str, tuple[float, float]],
                  values: dict[str, np.ndarray]) -> list[str]:
    """Per tensor: what MSE clipping keeps of each range and the SQNR before / after (most
    clipped first), and the channel balance of each op type's outputs."""
    rows = []
    for name, (low, high) in ranges.items():
        if name in values and high > low:
            new_low, new_high = clipped_ranges[name]
            rows.append(((new_high - new_low) / (high - low), name,
                         sqnr_db(values[name], low, high),
                         sqnr_db(values[name], new_low, new_high)))
    rows.sort()
    lines = ["", "Per tensor, MSE clipping (range kept, of min/max) and int8 SQNR (dB), "
             "most clipped first:"]
    lines += [f"  {kept:5.2f}  {before:5.1f} -> {after:5.1f} dB  {short_name(name)}"
              for kept, name, before, after in rows[:10]]
    sqnr = np.array([before for _, _, before, _ in rows])
    lines.append(f"  SQNR at min/max over all {len(sqnr)} tensors: median {np.median(sqnr):.1f} "
                 f"dB, 5th-95th percentile {np.percentile(sqnr, 5):.1f}-"
                 f"{np.percentile(sqnr, 95):.1f} dB")
    lines.append("Channel balance (largest channel's max |x| / the median channel's), the most "
                 "unbalanced output of each op type:")
    written = producers(calibrated)
    for op_type in ("CONV_2D", "FULLY_CONNECTED", "ADD", "HARD_SWISH"):
        spreads = [(channel_spread(values[name]), name) for name, op in written.items()
                   if op == op_type and name in values]
        if spreads:
            spread, name = max(spreads)
            lines.append(f"  {op_type:<16}{spread:5.1f}x  {short_name(name)}")
    return lines


def layer_report(errors: list[tuple[float, str]]) -> list[str]:
    per_scale = np.array([error for error, _ in errors])
    lines = ["", f"Per layer (QuantizationDebugger, 50 calibration crops, {len(errors)} quantized "
             f"arithmetic layers): RMSE / scale median {np.median(per_scale):.3f}, max "
             f"{per_scale.max():.3f} (rounding alone: {ROUNDING_RMSE_PER_SCALE:.3f})"]
    return lines + [f"  {error:.3f}  {name}" for error, name in errors[:5]]


def plot(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = rows[::-1]  # barh draws bottom-up
    names = [row.name for row in rows]
    colors = ["tab:gray" if row.reference else "tab:blue" for row in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.38 * len(rows) + 1.4), sharey=True)
    left.barh(names, [100 * row.agreement for row in rows], color=colors)
    left.axvline(99, color="tab:red", linestyle="--")
    left.text(99, len(rows) - 0.45, "goal 99%", color="tab:red", ha="center")
    left.set_ylim(-0.6, len(rows) - 0.1)
    left.set_xlim(90, 100)
    left.set_xlabel("top-1 agreement with Keras, held-out crops (%)")
    right.barh(names, [row.mean_error for row in rows], color=colors)
    right.set_xlabel("mean |logit error|")
    fig.suptitle("LeViT-128S int8 on the 12-photo task: what each choice changes "
                 "(gray: other modes, for comparison)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    parser.add_argument("--work", type=Path, default=Path("/tmp/int8-fidelity"))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    from int8_fidelity import finetune, heldout, write_crops

    data = args.work / "crops"
    if not (data / "val").is_dir():
        write_crops(data, {"train": 150, "val": 50})
    best = finetune(data, args.work / "run", args.epochs)

    from levit_tf.converters import load_pretrained
    from levit_tf.tflite import ATTENTION_FLOAT_OPS, export
    from levit_tf.tflite.calibration import calibration_images, to_input_domain
    from levit_tf.tflite.exporter import _op_names
    from levit_tf.utils.cpu_features import cpu_model, int8_capability

    model = load_pretrained(str(best))
    images, _, classes = heldout(data)
    reference = np.asarray(model.predict(images, batch_size=64, verbose=0)["logits"])
    # the calibration export() uses: the first 200 training crops in its fixed order
    calibration = np.concatenate(calibration_images(
        data / "train", 200, (64, 64), lambda x: to_input_domain(x, "normalized")))
    calibrated = calibrated_graph(model, calibration)
    ranges = tensor_ranges(calibrated)
    values = activations(calibrated, calibration)
    lines = [f"CPU: {cpu_model()}, {int8_capability()}",
             f"held-out: {len(images)} crops of {len(classes)} photos; calibration: "
             f"{len(calibration)} training crops; {len(ranges)} calibrated tensors",
             f"{'variant':<40}{'agreement':>10}{'mean|d|':>10}{'max|d|':>9}"]
    print("\n".join(lines), flush=True)
    rows: list[Row] = []

    def add(row: Row) -> None:
        rows.append(row)
        lines.append(f"{row.name:<40}{row.agreement:>10.1%}{row.mean_error:>10.4f}"
                     f"{row.max_error:>9.3f}")
        print(lines[-1], flush=True)

    work = args.work / "sensitivity"
    work.mkdir(parents=True, exist_ok=True)
    op_types = _op_names(calibrated)
    picked = {}
    for number, variant in enumerate(variants(op_types)):
        if variant.ranges not in picked:
            picked[variant.ranges] = chosen_ranges(variant.ranges, ranges, values)
        graph = (calibrated if variant.ranges == "minmax"
                 else with_ranges(calibrated, picked[variant.ranges]))
        row, logits = evaluate(quantize(graph, variant.float_ops),
                               work / f"variant_{number}.tflite", images, reference, variant.name)
        add(row)
        if number == 0:  # the shipped default
            default_logits = logits
    source = next(name for name in ranges if name.startswith("serving_default"))
    rounded = fake_quantize(images, *ranges[source]).astype(np.float32)  # the input QUANTIZE
    add(compare(np.asarray(model.predict(rounded, batch_size=64, verbose=0)["logits"]),
                reference, "Keras on int8-rounded input", is_reference=True))
    from int8_fidelity import predict

    for mode in ("dynamic", "int16x8"):
        options = ({"calibration_data": data / "train", "calibration_steps": 200}
                   if mode == "int16x8" else {})
        path = work / f"{mode}.tflite"
        export(model, path, mode, **options)
        add(compare(predict(path, images), reference, mode, is_reference=True))

    lines += ["", margin_report(reference, default_logits)]
    lines += tensor_report(calibrated, ranges, picked["mse"], values)
    lines += layer_report(layer_errors(model, calibration[:50], ATTENTION_FLOAT_OPS))
    print("\n".join(lines[-24:]))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "int8_sensitivity.txt").write_text("\n".join(lines) + "\n")
    plot(rows, args.out / "int8_sensitivity.png")


if __name__ == "__main__":
    main()
