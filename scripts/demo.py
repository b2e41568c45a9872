"""The whole user path offline: fine-tune, export SavedModel and TFLite, evaluate, one table.

    python scripts/demo.py [--checkpoint SOURCE] [--out demo_out] [--epochs N] [--quick]

With no checkpoint it builds LeViT-128S (random init) and fine-tunes it on scikit-learn's bundled
handwritten digits (real, offline; 32 px by default to fit the time budget, upscaled by the exact
eval transform); with ``--checkpoint`` (anything ``levit-tf convert`` reads) it starts from that
model instead, at the checkpoint's input size. Then it exports a SavedModel and TFLite float32,
float16 and int8 (calibrated on 200 training images; attention kept in float), evaluates each on
the held-out split, prints one table (accuracy, agreement with Keras, size, latency) and writes
the training curve and a quantization-error plot into ``--out``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="start from this model instead of LeViT-128S")
    parser.add_argument("--out", type=Path, default=Path("demo_out"))
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--image-size", type=int, default=None,
                        help="default: 32 for the preset, the checkpoint's size otherwise")
    parser.add_argument("--quick", action="store_true",
                        help="1 epoch and 32 calibration images (a smoke test, not a result)")
    return parser.parse_args(argv)


def held_out(data) -> tuple:
    import numpy as np

    images, labels = [], []
    for x, y in data.val:
        images.append(x.numpy())
        labels.append(y.numpy())
    return np.concatenate(images), np.concatenate(labels)


def calibration_images(data, count: int):
    import numpy as np

    images = []
    for x, _ in data.train.unbatch().take(count):
        images.append(x.numpy())
    return np.stack(images)


def savedmodel_logits(directory: Path, images):
    import numpy as np
    import tensorflow as tf

    serve = tf.saved_model.load(str(directory)).signatures["serving_default"]
    logits = np.concatenate([serve(pixel_values=tf.constant(images[i:i + 64]))["logits"].numpy()
                             for i in range(0, len(images), 64)])
    single = tf.constant(images[:1])
    for _ in range(3):
        serve(pixel_values=single)
    start = time.perf_counter()
    for _ in range(20):
        serve(pixel_values=single)
    return logits, (time.perf_counter() - start) / 20 * 1000


def directory_size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def plot_errors(errors: dict[str, object], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, error in errors.items():
        ax.hist(np.ravel(error), bins=60, histtype="step", log=True, label=name)
    ax.set_xlabel("|logit - Keras float logit| on the held-out digits")
    ax.set_ylabel("count")
    ax.set_title("quantization error by export")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", message="You are using a softmax over axis")
    import numpy as np

    from levit_tf.export.saved_model import export_saved_model
    from levit_tf.tflite import ATTENTION_FLOAT_OPS, TFLiteModel, export
    from levit_tf.training.finetune import finetune
    from levit_tf.training.options import FinetuneOptions

    start = time.perf_counter()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    epochs = 1 if args.quick else args.epochs
    image_size = args.image_size or (None if args.checkpoint else 32)
    print(f"[1/4] fine-tuning {args.checkpoint or 'LeViT-128S (random init)'} on the digits, "
          f"{epochs} epoch(s)")
    result = finetune(FinetuneOptions(
        model=args.checkpoint or "levit-128S", data="digits", epochs=epochs,
        out=str(out / "run"), image_size=image_size, seed=0, drop_path=0.1 if not args.checkpoint
        else None, warmup_epochs=min(2.0, epochs / 2)))
    model = result.model
    shutil.copyfile(result.run.curve, out / "training_curve.png")
    images, labels = held_out(result.data)
    keras_logits = np.asarray(model.predict(images, batch_size=64, verbose=0)["logits"])

    print("[2/4] exporting the SavedModel")
    shutil.rmtree(out / "savedmodel", ignore_errors=True)  # a previous run's export
    saved = export_saved_model(model, out / "savedmodel" / "1")
    print("[3/4] exporting TFLite float32 / float16 / int8")
    calibration = calibration_images(result.data, 32 if args.quick else 200)
    tflite_files = {}
    for mode in ("float32", "float16", "int8"):
        int8 = mode == "int8"
        tflite_files[mode] = export(
            model, out / f"levit_{mode}.tflite", mode,
            calibration_data=calibration if int8 else None, calibration_steps=len(calibration),
            float_ops=ATTENTION_FLOAT_OPS if int8 else ()).path

    print("[4/4] evaluating on the held-out split")
    rows = [("Keras (float32)", keras_logits, None, None)]
    sm_logits, sm_ms = savedmodel_logits(saved, images)
    rows.append(("SavedModel", sm_logits, directory_size_mb(saved), sm_ms))
    errors = {}
    for mode, path in tflite_files.items():
        runtime = TFLiteModel(path, num_threads=1)
        logits = runtime(images)
        errors[f"TFLite {mode}"] = np.abs(logits - keras_logits)
        rows.append((f"TFLite {mode}", logits, path.stat().st_size / 1e6,
                     runtime.latency_ms(runs=30)))
    plot_errors(errors, out / "quantization_error.png")

    print(f"\nLeViT-128S on the digits: {result.data.num_train} train / {len(labels)} held out, "
          f"{result.image_size} px, {result.epochs_done} epoch(s)")
    print(f"{'model':<18}{'accuracy':>10}{'agrees w/ Keras':>17}{'size MB':>9}{'batch-1 ms':>12}")
    for name, logits, size, ms in rows:
        accuracy = float(np.mean(logits.argmax(1) == labels))
        agreement = float(np.mean(logits.argmax(1) == keras_logits.argmax(1)))
        print(f"{name:<18}{accuracy:>10.2%}{agreement:>17.2%}"
              f"{(f'{size:.1f}' if size else '-'):>9}{(f'{ms:.2f}' if ms else '-'):>12}")
    print(f"\n(latency: batch 1, 1 thread for TFLite/XNNPACK; SavedModel with TF's default "
          f"threads)\nwrote {out}/: training_curve.png, quantization_error.png, savedmodel/1, "
          f"levit_*.tflite, run/ ({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
