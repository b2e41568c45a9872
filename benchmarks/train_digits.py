"""Train LeViT-128S from scratch on scikit-learn's digits with ``model.fit``; print a table.

    python -m benchmarks.train_digits out/levit-128S-digits.keras

writes the trained model (the last epoch's, without optimizer state) to that path, its CSV
log and training-curve PNG beside it (``.csv``, ``.png``), and keeps the run directory
(``<path stem>_run/``) so an interrupted run resumes with the same command. Everything is
seeded (``--seed``): the same command reproduces the model, which the TFLite int8-fidelity
check uses.

It runs exactly what ``levit-tf finetune --model levit-128S --data digits ...`` runs, with the
settings below as defaults.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULTS = dict(image_size=32, epochs=30, batch_size=64, lr=1e-3, weight_decay=0.05,
                warmup_epochs=2.0, label_smoothing=0.1, drop_path=0.1, seed=0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model_path", metavar="MODEL.keras", help="where the trained model goes")
    for name, value in DEFAULTS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--no-augment", dest="augment", action="store_false")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    model_path = Path(args.model_path)
    if model_path.suffix != ".keras":
        print(f"error: {model_path} must end in .keras", file=sys.stderr)
        return 1
    model_path.parent.mkdir(parents=True, exist_ok=True)
    warnings.filterwarnings("ignore", message="You are using a softmax over axis")

    from levit_tf.training.finetune import finetune
    from levit_tf.training.options import FinetuneOptions

    options = FinetuneOptions(
        model="levit-128S", data="digits", out=str(model_path.with_name(
            f"{model_path.stem}_run")), augment=args.augment,
        **{k: getattr(args, k) for k in DEFAULTS})
    result = finetune(options)
    import keras

    # the trained model without the optimizer state (a third of the size of last.keras)
    keras.saving.load_model(result.run.last, compile=False).save(model_path)
    shutil.copyfile(result.run.log, model_path.with_suffix(".csv"))
    shutil.copyfile(result.run.curve, model_path.with_suffix(".png"))

    accuracy = result.final_val_accuracy
    rate = result.images_per_second
    session = f"{sum(result.epoch_seconds):.0f}" if result.epoch_seconds else "-"
    rows = [
        ("model", f"LeViT-128S, random init ({result.model.count_params() / 1e6:.2f}M "
                  "parameters)"),
        ("data", f"sklearn digits: {result.data.num_train} train / {result.data.num_val} "
                 f"held out (stratified, seed {args.seed})"),
        ("image size", f"{result.image_size} px (8x8 upscaled by the LeViT eval transform)"),
        ("epochs", f"{result.epochs_done} (batch {args.batch_size}, AdamW lr {args.lr}, "
                   f"wd {args.weight_decay}, warmup {args.warmup_epochs} + cosine)"),
        ("held-out accuracy (last epoch)", f"{accuracy:.4f}" if accuracy is not None else "-"),
        ("best held-out accuracy", f"{result.best:.4f} (epoch {result.best_epoch})"
         if result.best is not None else "-"),
        ("wall time (this session)", f"{result.wall_seconds:.0f} s"),
        ("training time (this session, no eval)", f"{session} s"),
        ("training throughput", f"{rate:.0f} img/s (after epoch 1's tracing)" if rate else "-"),
        ("model file", str(model_path)),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"\n| {'':{width}} | result |\n| {'-' * width} | --- |")
    for name, value in rows:
        print(f"| {name:{width}} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
