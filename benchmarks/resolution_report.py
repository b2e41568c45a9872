"""LeViT at input sizes it was not trained at: resized attention-bias tables on real data.

Trains a small 3-stage LeViT (random init, seeded) on scikit-learn's handwritten digits at 224 px
(stage key grids 14x14, 7x7, 4x4, so the bias tables are real 2-D tables; or takes a model that
was trained elsewhere, ``--model``), then rebuilds it at other sizes with ``change_resolution``
(every bias table resized, everything else unchanged) and reports test accuracy

- at the train size: trained tables and zeroed tables (what the tables are worth),
- at each other size, before fine-tuning: tables resized bicubic / bilinear, zeroed, and
  "offsets kept" (each table cropped / edge-padded so that a token offset keeps its bias
  instead of a scaled one: the naive alternative to resizing),
- after one epoch of fine-tuning at the new size (from the bicubic tables), and, as a control,
  after the same epoch at the train size (what the extra epoch gives with no size change),

plus the float32 TFLite latency (XNNPACK, 1 thread, batch 1) at each size next to the first
stage's token count. It prints a markdown table, writes it to ``benchmarks/results/
resolution.txt`` and plots it to ``resolution.png``; the trained model goes to ``--save``.

    python -m benchmarks.resolution_report                 # train at 224, evaluate at 160, 288
    python -m benchmarks.resolution_report --model out/levit-digits-224.keras

Model: LeViT with hidden sizes 64/128/192, 2/4/6 heads, one block per stage, key dim 16
(0.9M parameters; LeViT-128S's stem and block structure, narrower and shallower) so that
training at 224 fits a CPU budget: ~110 img/s (XLA) on 2 cores against ~30 for LeViT-128S.

Data: the 8x8 digits, split per class with a seed: a 20% test split (the held-out split of
``levit_tf.training.digits``, the only split in the table), and of the rest 15% validation (per
epoch logging and every choice of settings) and 85% training. Evaluation uses the LeViT eval
transform (shortest edge int(256/224 * S), centre crop S), so at every size a digit covers the
same fraction of the image and its size in pixels scales with S: 22.8 / 32 / 41 px per digit
pixel at 160 / 224 / 288. Training uses LeViT's random resized crop (``levit_tf.data``,
PIL-exact bicubic, seeded; no flip): each digit padded by ``--pad`` background pixels per side
(2) and upscaled to 160 px, a crop of ``--crop-scale`` (15-100%) of the area resized to S. At
224 that shows digits at 18.7-48 px per digit pixel, zoomed out (whole digit, background
around it) to zoomed in (part of it), so 160 and 288 lie inside the training range, as they do
for an ImageNet LeViT trained with random resized crops. With a narrower range (one pixel of
padding, crops of 30-100%: 22.4-41 px, the eval sizes at its edges) the same network lost 7-17
points at 160 / 288 before fine-tuning, with its tables resized or zeroed alike: the network,
not the tables, had learned one digit size.

Recipe: AdamW (weight decay 0.05, none on the bias tables), batch 32, lr 2e-3, label smoothing
0.1, both heads on the labels, linear warmup (3 epochs) + cosine, 60 epochs (30 left the model
under-fitted under this augmentation: 95.4% validation against 99.1%). Fine-tuning at a new
size: one epoch on the train split through that size's eval transform (FixRes fine-tunes at
the test size with test-time preprocessing; in trial runs one epoch with the training
augmentation fell short of the train-size accuracy, at 288 even below the unfine-tuned
model), peak lr from ``--finetune-lr`` chosen per size on the
validation split, 10% warmup + cosine, starting from the bicubic tables.
``--table-lr-multiplier`` gives the bias tables a larger lr: with Adam a zero-initialized table
moves about lr x steps at most, so in a short run at the plain lr (multiplier 1; an earlier
30-epoch recipe) the tables stayed below 0.2 and zeroing them changed nothing (91.9% either
way at 224), which makes the resize untestable; a released LeViT's tables, after 1000 ImageNet
epochs, are far larger. The default, x20 (chosen on the validation split with that recipe:
94.0% against 91.7% at x1), gives tables up to ~5 that are worth ~15 points of test accuracy at
224 with this one.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

from levit_tf import LevitConfig, LevitForImageClassificationWithTeacher
from levit_tf.data.pipeline import TrainAugment, eval_config, train_transform
from levit_tf.models.levit.losses import SparseCrossEntropy
from levit_tf.models.levit.resolution import attention_layers, change_resolution
from levit_tf.tflite import TFLiteModel, export
from levit_tf.training.digits import load_digits_split, preprocess_digits
from levit_tf.training.optimizers import NO_DECAY_NAMES, no_weight_decay, warmup_cosine
from levit_tf.training.splits import stratified_split

SEED = 0
#: The digits model: 3 stages with attention on 14x14 / 7x7 / 4x4 key grids at 224 px.
ARCHITECTURE = dict(hidden_sizes=[64, 128, 192], num_attention_heads=[2, 4, 6],
                    depths=[1, 1, 1], key_dim=[16, 16, 16])
#: Train sources: digit padded by PAD background pixels per side, upscaled to SOURCE_SIZE.
PAD = 2
SOURCE_SIZE = 160
CROP_SCALE = (0.15, 1.0)
RESULTS = Path(__file__).resolve().parent / "results"


# ----------------------------------------------------------------------------- data


@dataclass
class Splits:
    """uint8 (N, 8, 8) digits and labels: train / validation / test, fixed by ``seed``."""

    train_images: np.ndarray
    train_labels: np.ndarray
    val_images: np.ndarray
    val_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    pixels: dict = field(default_factory=dict)  # (split, size) -> float32 eval-transformed

    @classmethod
    def make(cls, seed: int = SEED, val_fraction: float = 0.15) -> Splits:
        digits = load_digits_split(0.2, seed)  # its held-out 20% is the test split
        train, val = stratified_split(digits.train_labels, val_fraction, seed + 1)
        return cls(digits.train_images[train], digits.train_labels[train],
                   digits.train_images[val], digits.train_labels[val],
                   digits.val_images, digits.val_labels)

    def eval_pixels(self, split: str, size: int) -> tuple[np.ndarray, np.ndarray]:
        """(float32 (N, S, S, 3) through the LeViT eval transform, labels) of val or test."""
        images, labels = getattr(self, f"{split}_images"), getattr(self, f"{split}_labels")
        if (split, size) not in self.pixels:
            self.pixels[split, size] = preprocess_digits(images, labels, size)
        return self.pixels[split, size], labels


def train_sources(images: np.ndarray, pad: int = PAD, size: int = SOURCE_SIZE) -> np.ndarray:
    """(N, 8, 8) uint8 -> (N, size, size) uint8: padded with background, PIL bicubic upscale."""
    from PIL import Image

    padded = np.pad(images, [(0, 0), (pad, pad), (pad, pad)])
    return np.stack([np.asarray(Image.fromarray(image).resize((size, size), Image.BICUBIC))
                     for image in padded])


def train_dataset(sources: np.ndarray, labels: np.ndarray, size: int, batch_size: int,
                  seed: int, scale: tuple[float, float] = CROP_SCALE) -> tf.data.Dataset:
    """Seeded random resized crops (PIL-exact bicubic, no flip) of ``sources`` at ``size``:
    batches of (float32 (B, S, S, 3) normalized, int32 (B,)), reshuffled every epoch."""
    apply = train_transform(size, eval_config(size), TrainAugment(scale=scale, hflip=0.0), seed)
    data = tf.data.Dataset.from_tensor_slices((sources, labels)).shuffle(
        len(labels), seed=seed, reshuffle_each_iteration=True)
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    data = tf.data.Dataset.zip((data, seeds)).map(
        lambda element, s: (apply(element[0], s), element[1]),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


# ----------------------------------------------------------------------------- tables


def copy_model(model: keras.Model) -> keras.Model:
    """An uncompiled copy of a LeViT model (same config and weights)."""
    copy = type(model)(model.config)
    copy.set_weights(model.get_weights())
    return copy


def zero_tables(model: keras.Model) -> keras.Model:
    """A copy of ``model`` with every attention-bias table set to zero."""
    copy = copy_model(model)
    for layer in attention_layers(copy):
        layer.attention_biases.assign(np.zeros(layer.attention_biases.shape, np.float32))
    return copy


def crop_or_pad_table(table: np.ndarray, grid: tuple[int, int],
                      new_grid: tuple[int, int]) -> np.ndarray:
    """(heads, H*W) table over key offsets (|dy|, |dx|) -> (heads, H'*W'): every offset that
    exists on both grids keeps its bias; new larger offsets repeat the largest old one."""
    heads = table.shape[0]
    image = table.reshape(heads, *grid)[:, :new_grid[0], :new_grid[1]]
    pad = [(0, 0), (0, max(0, new_grid[0] - grid[0])), (0, max(0, new_grid[1] - grid[1]))]
    return np.pad(image, pad, mode="edge").reshape(heads, -1)


def offsets_kept(model: keras.Model, size: int) -> keras.Model:
    """``model`` at ``size`` with every table cropped / padded instead of resized."""
    resized = change_resolution(model, size)
    for old, new in zip(attention_layers(model), attention_layers(resized), strict=True):
        new.attention_biases.assign(crop_or_pad_table(
            np.asarray(old.attention_biases), old.grid, new.grid).astype(np.float32))
    return resized


# ----------------------------------------------------------------------------- train / eval


class EpochLog(keras.callbacks.Callback):
    """One line per epoch: loss, train accuracy, validation accuracy, seconds."""

    def __init__(self, label: str, epochs: int) -> None:
        super().__init__()
        self.label, self.epochs = label, epochs

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        val = f", val acc {logs['val_accuracy']:.3f}" if "val_accuracy" in logs else ""
        print(f"  [{self.label}] epoch {epoch + 1}/{self.epochs}: loss {logs.get('loss', 0):.3f}, "
              f"train acc {logs.get('accuracy', 0):.3f}{val} "
              f"({time.perf_counter() - self.start:.0f} s)", flush=True)


class TableBoostedAdamW(keras.optimizers.AdamW):
    """AdamW whose step on the attention-bias tables is ``table_lr_multiplier`` x the lr.

    Adam moves a weight by about the lr per step whatever its gradient's scale, so tables that
    start at zero move at most ~lr x steps: a short run leaves them near zero, unlike the 1000
    ImageNet epochs of a released LeViT. The multiplier lets a short run learn real tables.
    """

    def __init__(self, table_lr_multiplier: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.table_lr_multiplier = table_lr_multiplier

    def update_step(self, gradient, variable, learning_rate):
        # the TF backend passes the tf.Variable: name "attention_biases:0"
        name = variable.name.split(":")[0].rsplit("/", 1)[-1]
        if name in NO_DECAY_NAMES and self.table_lr_multiplier != 1.0:
            learning_rate = learning_rate * self.table_lr_multiplier
        super().update_step(gradient, variable, learning_rate)


def compile_for_training(model: keras.Model, steps: int, lr: float, warmup_steps: int,
                         weight_decay: float, label_smoothing: float,
                         table_lr_multiplier: float = 1.0) -> None:
    """AdamW (no decay on tables, norms, biases) with warmup-cosine on both heads (classic
    two-head loss), XLA."""
    optimizer = TableBoostedAdamW(table_lr_multiplier, weight_decay=weight_decay,
                                  learning_rate=warmup_cosine(lr, steps, warmup_steps))
    optimizer.exclude_from_weight_decay(var_list=[w for w in model.weights if no_weight_decay(w)])
    model.compile(optimizer=optimizer,
                  loss=SparseCrossEntropy(label_smoothing), metrics=["accuracy"],
                  jit_compile=True)


def accuracy(model: keras.Model, pixels: np.ndarray, labels: np.ndarray,
             batch_size: int = 120) -> float:
    logits = tf.function(lambda x: model(x, training=False)["logits"])
    predictions = np.concatenate([np.argmax(logits(pixels[i:i + batch_size]), axis=1)
                                  for i in range(0, len(pixels), batch_size)])
    return float(np.mean(predictions == labels))


def train(splits: Splits, args: argparse.Namespace) -> tuple[keras.Model, float]:
    """The digits LeViT trained from scratch at ``args.train_size`` (seeded)."""
    keras.utils.set_random_seed(SEED)
    size = args.train_size
    sources = train_sources(splits.train_images, args.pad)
    data = train_dataset(sources, splits.train_labels, size, args.batch_size, SEED,
                         tuple(args.crop_scale))
    steps = args.epochs * int(data.cardinality())
    config = LevitConfig(num_labels=10, image_size=size, **ARCHITECTURE)
    model = LevitForImageClassificationWithTeacher(config)
    compile_for_training(model, steps, args.lr, round(args.warmup_epochs * steps / args.epochs),
                         args.weight_decay, args.label_smoothing, args.table_lr_multiplier)
    print(f"training {model.count_params() / 1e6:.2f}M-parameter LeViT at {size} px for "
          f"{args.epochs} epochs ({len(splits.train_labels)} images)", flush=True)
    start = time.perf_counter()
    model.fit(data, epochs=args.epochs, verbose=0,
              validation_data=splits.eval_pixels("val", size),
              callbacks=[EpochLog(f"train {size}", args.epochs)])
    return model, time.perf_counter() - start


def finetune_one_epoch(model: keras.Model, splits: Splits, size: int, lr: float,
                       args: argparse.Namespace) -> float:
    """One epoch of ``model`` at ``size`` on the train split through the eval transform (as
    FixRes fine-tunes at the test size with test-time preprocessing), peak ``lr`` with 10%
    warmup + cosine; seconds taken."""
    keras.utils.set_random_seed(SEED + size)
    pixels, labels = splits.eval_pixels("train", size)
    data = tf.data.Dataset.from_tensor_slices((pixels, labels)).shuffle(
        len(labels), seed=SEED + size).batch(args.batch_size)
    steps = int(data.cardinality())
    compile_for_training(model, steps, lr, max(1, steps // 10),
                         args.weight_decay, args.label_smoothing, args.table_lr_multiplier)
    start = time.perf_counter()
    model.fit(data, epochs=1, verbose=0, validation_data=splits.eval_pixels("val", size),
              callbacks=[EpochLog(f"fine-tune {size}, lr {lr:g}", 1)])
    return time.perf_counter() - start


@dataclass
class FineTune:
    """One fine-tuning run: its peak lr, accuracies, seconds and the fine-tuned model."""

    lr: float
    validation: float
    test: float
    seconds: float
    model: keras.Model


def best_finetune(trained: keras.Model, splits: Splits, size: int,
                  args: argparse.Namespace) -> FineTune:
    """One epoch at ``size`` from the bicubic tables for each of ``args.finetune_lr``; the run
    with the best validation accuracy (the test split plays no part in the choice)."""
    runs = []
    for lr in args.finetune_lr:
        model = change_resolution(trained, size, "bicubic")
        if model is trained:  # the train size: the control run, on a copy
            model = copy_model(trained)
        seconds = finetune_one_epoch(model, splits, size, lr, args)
        runs.append(FineTune(lr, accuracy(model, *splits.eval_pixels("val", size)),
                             accuracy(model, *splits.eval_pixels("test", size)), seconds, model))
    return max(runs, key=lambda run: run.validation)  # first of equals: the smaller lr


def tflite_latency(model: keras.Model, runs: int) -> float:
    with tempfile.TemporaryDirectory() as directory:
        path = export(model, os.path.join(directory, "m.tflite")).path
        return TFLiteModel(path, num_threads=1).latency_ms(runs=runs, warmup=5)


def tokens(size: int) -> int:
    return (size // 16) ** 2


@dataclass
class Row:
    size: int
    tokens: int
    trained: bool
    bicubic: float | None = None  # at the train size: the trained tables
    bilinear: float | None = None
    zeroed: float | None = None
    offsets_kept: float | None = None
    finetuned: float | None = None
    finetune_seconds: float | None = None
    tflite_ms: float | None = None
    finetune_lr: float | None = None


def evaluate_size(trained: keras.Model, splits: Splits, size: int,
                  args: argparse.Namespace) -> Row:
    """Accuracies of ``trained`` rebuilt at ``size``, then one fine-tuning epoch there."""
    test = splits.eval_pixels("test", size)
    bicubic = change_resolution(trained, size, "bicubic")
    row = Row(size, tokens(size), False, accuracy(bicubic, *test))
    row.bilinear = accuracy(change_resolution(trained, size, "bilinear"), *test)
    row.zeroed = accuracy(zero_tables(bicubic), *test)
    row.offsets_kept = accuracy(offsets_kept(trained, size), *test)
    print(f"  {size} px before fine-tuning: bicubic {percent(row.bicubic)}, bilinear "
          f"{percent(row.bilinear)}, zeroed {percent(row.zeroed)}, offsets kept "
          f"{percent(row.offsets_kept)}", flush=True)
    tuned = best_finetune(trained, splits, size, args)
    row.finetuned, row.finetune_seconds, row.finetune_lr = tuned.test, tuned.seconds, tuned.lr
    row.tflite_ms = tflite_latency(tuned.model, args.latency_runs)
    print(f"  {size} px after one epoch: {percent(row.finetuned)} (lr {tuned.lr:g} chosen on "
          f"validation: {percent(tuned.validation)}; {row.finetune_seconds:.0f} s); "
          f"TFLite {row.tflite_ms:.2f} ms", flush=True)
    return row


# ----------------------------------------------------------------------------- report


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def format_table(rows: list[Row], origin: str, test_images: int) -> str:
    lines = [
        "| size | tokens (stage 1) | bicubic tables | bilinear tables | zeroed tables | "
        "offsets kept (crop/pad) | +1 epoch fine-tune at size (peak lr, s) | "
        "TFLite fp32 ms (1 thread) | ms / token |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in sorted(rows, key=lambda r: r.size):
        name = f"{row.size} (trained)" if row.trained else str(row.size)
        first = f"{percent(row.bicubic)} (trained)" if row.trained else percent(row.bicubic)
        finetuned = percent(row.finetuned)
        if row.finetune_seconds is not None:
            finetuned += f" (lr {row.finetune_lr:g}, {row.finetune_seconds:.0f} s)"
        latency = "-" if row.tflite_ms is None else f"{row.tflite_ms:.2f}"
        per_token = "-" if row.tflite_ms is None else f"{row.tflite_ms / row.tokens:.4f}"
        lines.append(
            f"| {name} | {row.tokens} | {first} | {percent(row.bilinear)} | "
            f"{percent(row.zeroed)} | {percent(row.offsets_kept)} | {finetuned} | {latency} | "
            f"{per_token} |")
    lines.append(f"\nTest accuracy on the digits ({test_images} held-out images, never used "
                 f"for training or choosing settings); {origin}. Other sizes: that model "
                 "rebuilt with change_resolution (fine-tuning starts from the bicubic tables). "
                 "The fine-tuning epoch at the train size is a control: what one more epoch "
                 "through the eval transform gives with no size change.")
    return "\n".join(lines)


def plot(rows: list[Row], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(rows, key=lambda r: r.size)
    trained = next(r for r in rows if r.trained)
    others = [r for r in rows if not r.trained and r.bicubic is not None]
    fig, (bars, latency) = plt.subplots(1, 2, figsize=(12, 4.5),
                                        gridspec_kw={"width_ratios": [2, 1]})
    series = [("bicubic tables", "bicubic"), ("bilinear tables", "bilinear"),
              ("zeroed tables", "zeroed"), ("offsets kept", "offsets_kept"),
              ("+1 epoch fine-tune", "finetuned")]
    width = 0.16
    for i, (label, name) in enumerate(series):
        values = [100 * (getattr(r, name) or 0) for r in others]
        positions = [j + (i - 2) * width for j in range(len(others))]
        bars.bar(positions, values, width, label=label)
        for x, v in zip(positions, values, strict=True):
            bars.text(x, v + 0.5, f"{v:.0f}", ha="center", fontsize=7, zorder=3,
                      bbox=dict(facecolor="white", edgecolor="none", pad=0.3))
    bars.axhline(100 * trained.bicubic, color="k", ls="--",
                 label=f"{trained.size} px, trained ({percent(trained.bicubic)})")
    if trained.finetuned is not None:
        bars.axhline(100 * trained.finetuned, color="k", ls="-.", lw=0.8,
                     label=f"{trained.size} px, +1 epoch control ({percent(trained.finetuned)})")
    bars.axhline(100 * trained.zeroed, color="grey", ls=":",
                 label=f"{trained.size} px, tables zeroed ({percent(trained.zeroed)})")
    bars.set_xticks(range(len(others)), [f"{r.size} px ({r.tokens} tokens)" for r in others])
    bars.set_ylabel("test accuracy (%)")
    bars.set_ylim(0, 125)
    bars.set_yticks(range(0, 101, 20))
    bars.legend(fontsize=7, loc="upper center", ncol=4)
    bars.set_title(title, fontsize=9)
    timed = [r for r in rows if r.tflite_ms is not None]
    latency.plot([r.tokens for r in timed], [r.tflite_ms for r in timed], "o-")
    for r in timed:
        latency.annotate(f"{r.size} px", (r.tokens, r.tflite_ms), textcoords="offset points",
                         xytext=(5, -10), fontsize=8)
    latency.set_xlabel("stage-1 tokens")
    latency.set_ylabel("TFLite fp32 latency, 1 thread (ms)")
    latency.set_ylim(bottom=0)
    latency.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, metavar="MODEL.keras",
                        help="a digits LeViT trained elsewhere (e.g. a --save of this script) "
                             "instead of training one here; its size is the train size")
    parser.add_argument("--train-size", type=int, default=224)
    parser.add_argument("--eval-sizes", type=int, nargs="+", default=[160, 288])
    parser.add_argument("--latency-sizes", type=int, nargs="*", default=[],
                        help="extra sizes for the TFLite latency column only")
    parser.add_argument("--epochs", type=int, default=60, help="training epochs")
    parser.add_argument("--pad", type=int, default=PAD,
                        help="background pixels added around each 8x8 digit before the "
                             f"upscale to {SOURCE_SIZE} px (more = smaller digits in training)")
    parser.add_argument("--crop-scale", type=float, nargs=2, default=list(CROP_SCALE),
                        metavar=("MIN", "MAX"), help="random-resized-crop area range")
    parser.add_argument("--warmup-epochs", type=float, default=3.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3, help="training peak learning rate")
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--label-smoothing", type=float, default=0.1)
    parser.add_argument("--table-lr-multiplier", type=float, default=20.0,
                        help="the bias tables' lr / the other weights' lr (training and "
                             "fine-tuning)")
    parser.add_argument("--finetune-lr", type=float, nargs="+", default=[2e-4, 5e-4, 1e-3],
                        help="peak lrs tried for the one fine-tuning epoch at each size; the "
                             "table reports the one with the best validation accuracy")
    parser.add_argument("--no-control", dest="control", action="store_false",
                        help="skip the control: the same fine-tuning epoch at the train size")
    parser.add_argument("--latency-runs", type=int, default=50)
    parser.add_argument("--save", default="out/levit-digits-224.keras", metavar="MODEL.keras",
                        help="where the trained model goes ('' = not saved)")
    parser.add_argument("--results", default=str(RESULTS),
                        help="folder for resolution.txt and resolution.png ('' = none)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    tf.get_logger().setLevel("ERROR")  # per-model tf.function retracing notices
    start = time.perf_counter()
    splits = Splits.make()
    print(f"digits: {len(splits.train_labels)} train / {len(splits.val_labels)} validation / "
          f"{len(splits.test_labels)} test", flush=True)
    if args.model:
        trained = keras.saving.load_model(args.model, compile=False)
        args.train_size = trained.config.image_hw[0]
        origin = f"model {args.model} ({args.train_size} px)"
    else:
        trained, seconds = train(splits, args)
        origin = (f"trained at {args.train_size} px from scratch for {args.epochs} epochs "
                  f"(bias-table lr x{args.table_lr_multiplier:g}) in {seconds:.0f} s")
        if args.save:
            Path(args.save).parent.mkdir(parents=True, exist_ok=True)
            copy_model(trained).save(args.save)  # uncompiled: loads without this script
            print(f"saved {args.save}", flush=True)
    test = splits.eval_pixels("test", args.train_size)
    rows = [Row(args.train_size, tokens(args.train_size), True, accuracy(trained, *test),
                zeroed=accuracy(zero_tables(trained), *test),
                tflite_ms=tflite_latency(trained, args.latency_runs))]
    val = accuracy(trained, *splits.eval_pixels("val", args.train_size))
    print(f"{origin}: test {percent(rows[0].bicubic)} (tables zeroed: "
          f"{percent(rows[0].zeroed)}), validation {percent(val)}", flush=True)
    largest = max(float(np.abs(np.asarray(layer.attention_biases)).max())
                  for layer in attention_layers(trained))
    print(f"largest learned attention bias: {largest:.3f} (tables start at zero)", flush=True)
    if args.control:
        control = best_finetune(trained, splits, args.train_size, args)
        rows[0].finetuned, rows[0].finetune_seconds = control.test, control.seconds
        rows[0].finetune_lr = control.lr
        print(f"  control, {args.train_size} px after the same epoch: {percent(control.test)} "
              f"(lr {control.lr:g} chosen on validation: {percent(control.validation)})",
              flush=True)
    for size in args.eval_sizes:
        rows.append(evaluate_size(trained, splits, size, args))
    for size in args.latency_sizes:
        rows.append(Row(size, tokens(size), False, tflite_ms=tflite_latency(
            change_resolution(trained, size), args.latency_runs)))
    table = format_table(rows, origin, len(splits.test_labels))
    total = f"total {time.perf_counter() - start:.0f} s"
    print(f"\n{table}\n\n{total}")
    if args.results:
        results = Path(args.results)
        results.mkdir(parents=True, exist_ok=True)
        (results / "resolution.txt").write_text(f"{table}\n\n{total}\n")
        plot(rows, results / "resolution.png", f"digits LeViT, {origin}")
        print(f"wrote {results / 'resolution.txt'} and {results / 'resolution.png'}")


if __name__ == "__main__":
    main()
