"""LeViT at input sizes it was not trained at: resized attention-bias tables on real data.

Trains LeViT-128S (random init, seeded: AdamW, warmup + cosine, both heads on the labels) on
scikit-learn's handwritten digits at one size (or takes a model that ``benchmarks/train_digits.py``
wrote, ``--model``), then builds it at other sizes with ``change_resolution`` (every bias table
resized, everything else unchanged) and reports held-out accuracy

- before fine-tuning: tables resized bicubic / bilinear, and with the tables zeroed (what the
  tables are worth at that size),
- after one epoch of fine-tuning at the new size (from the bicubic tables),

plus the float32 TFLite latency (XNNPACK, 1 thread, batch 1) at each size next to the token
count of the first stage's grid (attention cost grows faster than the token count).

    python benchmarks/resolution_report.py     # train at 64, evaluate at 48, 96, 128
    python benchmarks/resolution_report.py --model out/levit-128S-digits.keras

The default train size is 64 px (grids 4x4, 2x2, 1x1), not 224: on 2 CPU cores LeViT-128S
learns the digits from scratch far faster there (89% held out after 10 epochs at 64 px, 61%
after 8 at 96 px), and 224 px training does not fit the ~10 minute budget. (train_digits.py's
default, 32 px, has 2x2 / 1x1 / 1x1 grids: too small to exercise the resizing.)

The digits are 8x8 images upscaled by the LeViT eval transform (shortest edge int(256/224 * S),
centre crop S) to every size, so a digit covers the same fraction of the image at every size.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
from levit_tf.tflite import TFLiteModel, export

from levit_tf import LevitConfig, LevitForImageClassificationWithTeacher
from levit_tf.resolution import attention_layers, change_resolution
from levit_tf.training.digits import digits_datasets
from levit_tf.training.optimizers import adamw, warmup_cosine

SEED = 0
BATCH = 64


@dataclass
class Row:
    size: int
    tokens: int
    trained: bool
    bicubic: float | None  # None: latency-only row
    bilinear: float | None = None
    zeroed: float | None = None
    finetuned: float | None = None
    finetune_seconds: float | None = None
    tflite_ms: float | None = None


def compile_for_training(model: keras.Model, steps: int, lr: float) -> None:
    """AdamW with warmup-cosine on both heads (classic two-head loss), accuracy metric."""
    model.compile(optimizer=adamw(model, warmup_cosine(lr, steps, warmup_steps=steps // 10),
                                  weight_decay=0.025),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])


def accuracy(model: keras.Model, dataset: tf.data.Dataset) -> float:
    correct = total = 0
    for pixels, labels in dataset:
        logits = model(pixels, training=False)["logits"]
        correct += int(np.sum(np.argmax(logits, axis=1) == labels.numpy()))
        total += len(labels)
    return correct / total


def zero_tables(model: keras.Model) -> keras.Model:
    """A copy of ``model`` with every attention-bias table set to zero."""
    copy = type(model)(model.config)
    copy.set_weights(model.get_weights())
    for layer in attention_layers(copy):
        layer.attention_biases.assign(np.zeros(layer.attention_biases.shape, np.float32))
    return copy


def train(size: int, epochs: int, lr: float) -> tuple[keras.Model, float]:
    """LeViT-128S trained from scratch at ``size`` (seeded); returns (model, seconds)."""
    keras.utils.set_random_seed(SEED)
    train_ds, _, _ = digits_datasets(size, BATCH, seed=SEED)
    config = LevitConfig.from_preset("levit-128S", num_labels=10, image_size=size)
    model = LevitForImageClassificationWithTeacher(config)
    compile_for_training(model, epochs * int(train_ds.cardinality()), lr)
    start = time.perf_counter()
    model.fit(train_ds, epochs=epochs, verbose=0)
    return model, time.perf_counter() - start


def finetune_one_epoch(model: keras.Model, train_ds: tf.data.Dataset, lr: float) -> float:
    compile_for_training(model, int(train_ds.cardinality()), lr)
    start = time.perf_counter()
    model.fit(train_ds, epochs=1, verbose=0)
    return time.perf_counter() - start


def tflite_latency(model: keras.Model, runs: int) -> float:
    with tempfile.TemporaryDirectory() as directory:
        path = export(model, os.path.join(directory, "m.tflite")).path
        return TFLiteModel(path, num_threads=1).latency_ms(runs=runs, warmup=5)


def tokens(size: int) -> int:
    return (size // 16) ** 2


def evaluate_size(trained: keras.Model, size: int, args: argparse.Namespace) -> Row:
    """Accuracies of ``trained`` rebuilt at ``size``, then one fine-tuning epoch there."""
    keras.utils.set_random_seed(SEED + size)
    train_ds, val_ds, _ = digits_datasets(size, BATCH, seed=SEED)
    bicubic = change_resolution(trained, size, "bicubic")
    row = Row(size, tokens(size), False, accuracy(bicubic, val_ds))
    row.bilinear = accuracy(change_resolution(trained, size, "bilinear"), val_ds)
    row.zeroed = accuracy(zero_tables(bicubic), val_ds)
    row.finetune_seconds = finetune_one_epoch(bicubic, train_ds, args.finetune_lr)
    row.finetuned = accuracy(bicubic, val_ds)
    row.tflite_ms = tflite_latency(bicubic, args.latency_runs)
    return row


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def format_table(rows: list[Row], train_size: int, held_out: int) -> str:
    lines = [
        "| size | tokens (stage 1) | bicubic tables | bilinear tables | zeroed tables | "
        "+1 epoch fine-tune at size | TFLite fp32 ms (1 thread) | ms / token |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in sorted(rows, key=lambda r: r.size):
        name = f"{row.size} (trained)" if row.trained else str(row.size)
        finetuned = percent(row.finetuned)
        if row.finetune_seconds is not None:
            finetuned += f" ({row.finetune_seconds:.0f} s)"
        lines.append(
            f"| {name} | {row.tokens} | {percent(row.bicubic)} | {percent(row.bilinear)} | "
            f"{percent(row.zeroed)} | {finetuned} | {row.tflite_ms:.2f} | "
            f"{row.tflite_ms / row.tokens:.4f} |")
    lines.append(f"\nheld-out accuracy on the digits ({held_out} images); trained at {train_size}, "
                 "other sizes rebuilt from that model.")
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, metavar="MODEL.keras",
                        help="a digits model trained elsewhere (benchmarks/train_digits.py) "
                             "instead of training one here; its size is the train size")
    parser.add_argument("--train-size", type=int, default=64)
    parser.add_argument("--eval-sizes", type=int, nargs="+", default=[48, 96, 128])
    parser.add_argument("--latency-sizes", type=int, nargs="*", default=[160, 224, 288],
                        help="extra sizes for the TFLite latency column only")
    parser.add_argument("--epochs", type=int, default=12, help="training epochs")
    parser.add_argument("--lr", type=float, default=1e-3, help="training peak learning rate")
    parser.add_argument("--finetune-lr", type=float, default=2e-4)
    parser.add_argument("--latency-runs", type=int, default=30)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    start = time.perf_counter()
    if args.model:
        trained = keras.saving.load_model(args.model)
        args.train_size = trained.config.image_hw[0]
        origin = f"loaded {args.model} ({args.train_size} px)"
    else:
        trained, seconds = train(args.train_size, args.epochs, args.lr)
        origin = (f"trained LeViT-128S at {args.train_size} for {args.epochs} epochs in "
                  f"{seconds:.0f} s")
    _, val_ds, split = digits_datasets(args.train_size, BATCH, seed=SEED)
    rows = [Row(args.train_size, tokens(args.train_size), True, accuracy(trained, val_ds),
                tflite_ms=tflite_latency(trained, args.latency_runs))]
    print(f"{origin}: {percent(rows[0].bicubic)} held out", flush=True)
    largest = max(float(np.abs(np.asarray(layer.attention_biases)).max())
                  for layer in attention_layers(trained))
    print(f"largest learned attention bias: {largest:.3f} (tables start at zero)", flush=True)
    for size in args.eval_sizes:
        rows.append(evaluate_size(trained, size, args))
        print(f"  evaluated at {size}", flush=True)
    for size in args.latency_sizes:
        model = change_resolution(trained, size)
        rows.append(Row(size, tokens(size), False, None,
                        tflite_ms=tflite_latency(model, args.latency_runs)))
    print()
    print(format_table(rows, args.train_size, len(split.val_labels)))
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
