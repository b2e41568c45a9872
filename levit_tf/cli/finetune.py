"""``levit-tf finetune``: train a LeViT classifier on a folder, a TFDS dataset or the digits."""

from __future__ import annotations

import argparse

from levit_tf.cli.errors import UserError
from levit_tf.training.options import STRATEGIES, FinetuneOptions
from levit_tf.utils.image_size import format_size, image_size_argument
from levit_tf.utils.optional import MissingDependency

EXAMPLES = """examples:
  levit-tf finetune --model levit-128S --data digits --image-size 32 --epochs 30 --out runs/d
  levit-tf finetune --model facebook/levit-128S --data ./flowers --epochs 10 --out runs/f \\
      --freeze-backbone --lr 3e-4
  levit-tf finetune --model levit-128S.keras --data tfds:tf_flowers --epochs 20 --out runs/t \\
      --distillation hard --teacher teacher.keras
  levit-tf finetune --model levit-128S.keras --data ./photos --image-size 192x256 --epochs 5 \\
      --out runs/wide

OUT gets last.keras, best.keras (by held-out accuracy), log.csv, curve.png and state.json;
running the same command again resumes from the last finished epoch.
"""


def add_parser(verbs: argparse._SubParsersAction) -> None:
    """Registers the ``finetune`` verb."""
    parser = verbs.add_parser(
        "finetune", help="fine-tune (or train from a preset) on your images with model.fit",
        description="Fine-tune a LeViT classifier. SOURCE is a checkpoint, .keras file, HF "
                    "model directory or hub id (new heads for the data's classes), or a preset "
                    "name (levit-128S ... levit-384) for random initialization.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--model", required=True, metavar="SOURCE", help="checkpoint / .keras / HF dir or id, "
        "or a preset name")
    add("--data", required=True, metavar="DATA", help="DIR (DIR/<class>/<image>, or DIR/train "
        "+ DIR/val), tfds:NAME, or digits (scikit-learn's 8x8 digits)")
    add("--epochs", required=True, type=int, help="total epochs of the run")
    add("--out", required=True, metavar="DIR", help="run directory (created; resumed if it "
        "holds an interrupted run)")
    add("--image-size", type=image_size_argument, default=None, metavar="S|HxW",
        help="input size, e.g. 256 or 192x256 (height x width), multiples of 16 (default 224 "
        "or the checkpoint's; a checkpoint of another size gets its attention-bias tables "
        "resized)")
    add("--batch-size", type=int, default=64, metavar="B")
    add("--lr", type=float, default=1e-3, help="peak AdamW learning rate (default 1e-3)")
    add("--weight-decay", type=float, default=0.05, help="AdamW weight decay (default 0.05)")
    add("--warmup-epochs", type=float, default=1.0, help="linear warmup (default 1 epoch)")
    add("--label-smoothing", type=float, default=0.1, help="default 0.1")
    add("--drop-path", type=float, default=None, help="stochastic depth rate (default: the "
        "model's)")
    add("--seed", type=int, default=0, help="seeds init, data order, augmentation, split")
    add("--val-fraction", type=float, default=0.2,
        help="held-out fraction when the data has no validation split (default 0.2)")
    add("--no-augment", dest="augment", action="store_false",
        help="no random crops / flips / shifts in training")
    add("--distillation", choices=["none", "hard"], default="none",
        help="hard: DeiT hard distillation from --teacher (trains the two-head model)")
    add("--teacher", default=None, metavar="PATH", help="teacher for --distillation hard: a "
        "LeViT source or any .keras classifier with the same inputs and classes")
    add("--freeze-backbone", action="store_true", help="train the heads only")
    add("--mixed-bfloat16", action="store_true", help="mixed_bfloat16 policy (float32 "
        "variables, logits and loss)")
    add("--strategy", choices=list(STRATEGIES), default="default",
        help="mirrored: all local GPUs with tf.distribute.MirroredStrategy; multiworker: "
        "MultiWorkerMirroredStrategy over the cluster in TF_CONFIG (run the same command on "
        "every worker, --out on storage they all see; only the chief writes it)")
    parser.set_defaults(handler=run, check_args=check_args)


def options_from_args(args: argparse.Namespace) -> FinetuneOptions:
    """The parsed flags as FinetuneOptions (not yet validated)."""
    return FinetuneOptions(
        model=args.model, data=args.data, epochs=args.epochs, out=args.out,
        image_size=args.image_size, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs,
        label_smoothing=args.label_smoothing, drop_path=args.drop_path, seed=args.seed,
        distillation=args.distillation, teacher=args.teacher,
        freeze_backbone=args.freeze_backbone, mixed_bfloat16=args.mixed_bfloat16,
        augment=args.augment, val_fraction=args.val_fraction, strategy=args.strategy)


def check_args(args: argparse.Namespace) -> None:
    """Bad flags fail fast, before TensorFlow is imported."""
    try:
        options_from_args(args).validate()
    except (ValueError, MissingDependency) as err:
        raise UserError(str(err)) from None


def run(args: argparse.Namespace) -> None:
    """Runs the verb; bad input raises UserError (one message, exit code 1)."""
    check_args(args)
    options = options_from_args(args)
    from levit_tf.converters import ConversionError
    from levit_tf.training.finetune import finetune

    try:
        result = finetune(options)
    except (ValueError, FileNotFoundError, ConversionError) as err:
        raise UserError(str(err)) from None
    except OSError as err:  # e.g. --out in a folder this user cannot write
        where = f"{err.filename}: " if err.filename else ""
        raise UserError(f"--out {options.out}: {where}{err.strerror or err}") from None
    if result.resumed_from:
        print(f"resumed at epoch {result.resumed_from + 1}")
    if result.resumed_from >= options.epochs:
        print(f"{result.run.root}: all {options.epochs} epochs already done")
    accuracy = result.final_val_accuracy
    best = f"{result.best:.4f} (epoch {result.best_epoch})" if result.best is not None else "-"
    print(f"done: {result.epochs_done} epochs, held-out accuracy {accuracy:.4f}, best {best}; "
          f"{result.data.num_train} train / {result.data.num_val} held-out images at "
          f"{format_size(result.image_size)}px; files in {result.run.root}")


__all__ = ["add_parser", "check_args", "options_from_args", "run"]
