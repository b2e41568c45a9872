"""Int8 fidelity on a real-photo task: top-1 agreement of each quantized export with Keras.

    python -m benchmarks.int8_fidelity [--work /tmp/int8-fidelity] [--epochs 30] [--out DIR]

The task ("which of 12 photos does this crop come from") is built from the photos that ship
in scikit-image and scikit-learn. Training crops come from the left 70% of each photo and
held-out crops from the right 30%, so no held-out pixel was seen in training. LeViT-128S is
fine-tuned from random initialization at 64 px through ``levit-tf finetune`` (cached in
``--work``); every quantized mode is calibrated on the training split only (and so is GPTQ's
weight rounding in the ``(GPTQ)`` rows) and compared with the Keras model on the held-out
crops. Prints one table (size, held-out accuracy, top-1 agreement with Keras, max and mean
|logit error|, XNNPACK partitions per mode) and writes it to ``--out``/int8_fidelity.txt.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

PHOTOS = ("astronaut", "brick", "camera", "chelsea", "coffee", "grass", "gravel",
          "hubble_deep_field", "immunohistochemistry", "rocket")
TRAIN_FRACTION = 0.7  # of each photo's width; the rest gives the held-out crops


def photos() -> dict[str, np.ndarray]:
    """12 real RGB uint8 photos (H, W, 3): ten from scikit-image, two from scikit-learn."""
    from skimage import data
    from sklearn.datasets import load_sample_images

    out = {}
    for name in PHOTOS:
        image = getattr(data, name)()
        out[name] = np.stack([image] * 3, -1) if image.ndim == 2 else image[..., :3]
    sample = load_sample_images()
    for file_name, image in zip(sample.filenames, sample.images, strict=True):
        out[Path(file_name).stem] = image
    return out


def write_crops(root: Path, per_class: dict[str, int], seed: int = 0) -> None:
    """root/{train,val}/<photo>/<i>.png: square crops of 48..160 px at random places."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for name, image in photos().items():
        height, width = image.shape[:2]
        split_x = int(width * TRAIN_FRACTION)
        regions = {"train": (0, split_x), "val": (split_x, width)}
        for split, count in per_class.items():
            x0, x1 = regions[split]
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                side = int(rng.integers(48, min(160, x1 - x0, height) + 1))
                y = int(rng.integers(0, height - side + 1))
                x = int(rng.integers(x0, x1 - side + 1))
                Image.fromarray(image[y:y + side, x:x + side]).save(folder / f"{i:04d}.png")


def finetune(data: Path, run: Path, epochs: int) -> Path:
    """Fine-tunes LeViT-128S at 64 px (resumes / reuses a finished run); returns best.keras."""
    best = run / "best.keras"
    state = run / "state.json"
    if state.exists() and json.loads(state.read_text()).get("epochs_done", 0) >= epochs:
        return best
    cli = Path(sys.executable).with_name("levit-tf")
    subprocess.run([str(cli), "finetune", "--model", "levit-128S", "--data", str(data),
                    "--image-size", "64", "--epochs", str(epochs), "--batch-size", "64",
                    "--out", str(run), "--seed", "0"], check=True)
    return best


def heldout(data: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Normalized held-out images (N, 64, 64, 3), their labels (N,) and the class names."""
    from levit_tf.tflite.calibration import normalized_images

    classes = sorted(p.name for p in (data / "val").iterdir())
    images, labels = [], []
    for index, name in enumerate(classes):
        batch = np.stack(list(normalized_images(data / "val" / name, (64, 64))
                              .as_numpy_iterator()))
        images.append(batch)
        labels.append(np.full(len(batch), index))
    return np.concatenate(images), np.concatenate(labels), classes


AEQ_FLOAT_OPS = ("BATCH_MATMUL", "SUB", "SOFTMAX", "HARD_SWISH")  # our ATTENTION_FLOAT_OPS


def aeq_recipes() -> dict[str, object]:
    """ai-edge-quantizer recipes applied to our float32 .tflite (name -> recipe)."""
    from ai_edge_quantizer import recipe
    from ai_edge_quantizer.recipe_manager import RecipeManager

    selective = RecipeManager()
    selective.add_static_config(".*", recipe.TFLOperationName.ALL_SUPPORTED,
                                activation_num_bits=8, weight_num_bits=8)
    for op in AEQ_FLOAT_OPS:
        selective.add_quantization_config(
            ".*", getattr(recipe.TFLOperationName, op),
            algorithm_key=recipe.AlgorithmName.NO_QUANTIZE)
    return {
        "aeq static_wi8_ai8": recipe.static_wi8_ai8(),
        "aeq static_wi8_ai8 attention-float": selective.get_quantization_recipe(),
        "aeq static_wi8_ai16": recipe.static_wi8_ai16(),
        "aeq dynamic_wi8_afp32": recipe.dynamic_wi8_afp32(),
        "aeq dynamic_wi4_afp32": recipe.dynamic_wi4_afp32(),
        "aeq weight_only_wi4_afp32": recipe.weight_only_wi4_afp32(),
        "aeq dynamic_wi4b32_afp32": recipe.dynamic_wi4b32_afp32(),
    }


def aeq_export(float_path: Path, recipe_, calibration: np.ndarray, path: Path) -> None:
    """Quantizes the float32 export with ai-edge-quantizer; ``calibration`` (N, H, W, 3)."""
    from ai_edge_quantizer import quantizer

    qt = quantizer.Quantizer(str(float_path), recipe_)
    result = (qt.quantize(qt.calibrate({"serving_default": [{"pixel_values": x[None]}
                                                             for x in calibration]}))
              if qt.need_calibration else qt.quantize())
    path.unlink(missing_ok=True)
    result.export_model(str(path))


def predict(path: Path, images: np.ndarray) -> np.ndarray:
    """Float logits (N, classes) of the .tflite ``path`` on normalized ``images`` (N, H, W, 3).
    Files with int16 I/O (ai-edge-quantizer's ``static_wi8_ai16``) go through the LiteRT
    interpreter, quantizing / dequantizing with the file's own scales: ``TFLiteModel`` runs
    LiteRT's CompiledModel, whose buffers take no int16."""
    from levit_tf.tflite import TFLiteModel
    from levit_tf.tflite.runtime import new_interpreter

    interpreter = new_interpreter(path)
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    if source["dtype"] != np.int16:
        return TFLiteModel(path)(images)
    (in_scale, in_zero), (out_scale, out_zero) = source["quantization"], target["quantization"]
    info = np.iinfo(np.int16)
    logits = []
    for image in images:
        quantized = np.clip(np.round(image / in_scale + in_zero), info.min, info.max)
        interpreter.set_tensor(source["index"], quantized.astype(np.int16)[None])
        interpreter.invoke()
        raw = interpreter.get_tensor(target["index"])[0].astype(np.float32)
        logits.append((raw - out_zero) * out_scale)
    return np.stack(logits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    parser.add_argument("--work", type=Path, default=Path("/tmp/int8-fidelity"))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--train-crops", type=int, default=150, help="per photo")
    parser.add_argument("--val-crops", type=int, default=50, help="per photo")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--modes", nargs="+", default=None,
                        help="subset of MODE names below (default: all)")
    args = parser.parse_args()

    data = args.work / "crops"
    if not (data / "val").is_dir():
        write_crops(data, {"train": args.train_crops, "val": args.val_crops})
    best = finetune(data, args.work / "run", args.epochs)

    from levit_tf.converters import load_pretrained
    from levit_tf.tflite import ATTENTION_FLOAT_OPS, Quantization, export
    from levit_tf.tflite.calibration import normalized_images
    from levit_tf.tflite.runtime import xnnpack_coverage

    model = load_pretrained(str(best))
    images, labels, classes = heldout(data)
    reference = np.asarray(model.predict(images, batch_size=64, verbose=0)["logits"])
    from levit_tf.utils.cpu_features import cpu_model, int8_capability

    lines = [f"CPU: {cpu_model()}, {int8_capability()}",
             f"held-out: {len(images)} crops of {len(classes)} photos, Keras accuracy "
             f"{np.mean(reference.argmax(-1) == labels):.1%}"]
    print("\n".join(lines))

    modes = {
        "float32": dict(quantization="float32"),
        "dynamic": dict(quantization="dynamic"),
        "int8 (all ops)": dict(quantization="int8", float_ops=()),
        "int8 attention-float": dict(quantization="int8", float_ops=ATTENTION_FLOAT_OPS),
        "int16x8": dict(quantization="int16x8"),
        "dynamic (GPTQ)": dict(quantization="dynamic", weight_rounding="gptq"),
        "int8 attention-float (GPTQ)": dict(quantization="int8", float_ops=ATTENTION_FLOAT_OPS,
                                            weight_rounding="gptq"),
        "int16x8 (GPTQ)": dict(quantization="int16x8", weight_rounding="gptq"),
    }
    try:
        modes.update(aeq_recipes())
    except ImportError:
        print("ai-edge-quantizer not installed: its recipes are skipped")
    calibration = None
    rows = []
    for name, options in modes.items():
        if args.modes and name not in args.modes:
            continue
        path = args.work / f"{name.replace(' ', '_')}.tflite"
        if name.startswith("aeq"):
            if calibration is None:
                train = normalized_images(data / "train", (64, 64))
                calibration = np.stack(list(train.shuffle(4096, seed=0).take(200)
                                            .as_numpy_iterator()))
            aeq_export(args.work / "float32.tflite", options, calibration, path)
        else:
            needs_images = Quantization(options["quantization"]).needs_calibration
            if needs_images or "weight_rounding" in options:
                options = dict(options, calibration_data=data / "train", calibration_steps=200)
            export(model, path, **options)
        coverage = xnnpack_coverage(path)
        logits = predict(path, images)
        error = np.abs(logits - reference)
        rows.append((name, path.stat().st_size / 1e6, np.mean(logits.argmax(-1) == labels),
                     np.mean(logits.argmax(-1) == reference.argmax(-1)), float(error.max()),
                     float(error.mean())))
        builtin = ", ".join(sorted(coverage.builtin_ops)) or "-"
        lines.append(f"{name:<36}{rows[-1][1]:7.2f} MB  accuracy {rows[-1][2]:6.1%}  "
                     f"agreement {rows[-1][3]:6.1%}  max|dlogit| {rows[-1][4]:.3f}  mean "
                     f"{rows[-1][5]:.4f}  partitions {coverage.partitions}  builtin: {builtin}")
        print(lines[-1], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "int8_fidelity.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
