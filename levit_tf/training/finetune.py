"""One fine-tuning run end to end: data, model, recipe, ``fit`` with checkpoints, resume.

``finetune(FinetuneOptions(model="levit-128S", data="digits", epochs=30, out="runs/digits"))``
is what ``levit-tf finetune`` runs. The recipe: AdamW (no decay on biases, BN parameters and
attention biases), linear warmup then cosine decay per step, label-smoothed cross-entropy,
metrics on the held-out split after every epoch, files as ``levit_tf.training.run_dir`` says.

Under ``strategy="multiworker"`` every worker runs the same call (same options, so the same
seeds, data order and initial weights) and reads ``out`` to resume; only the chief writes it.
The other workers write their checkpoints to a temporary directory, removed when they finish.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from levit_tf.models.levit.configuration_levit import LevitConfig, canonical_preset_name
from levit_tf.models.levit.losses import SparseCrossEntropy
from levit_tf.models.levit.modeling_levit import (
    LevitForImageClassification,
    LevitForImageClassificationWithTeacher,
    LevitPreTrainedModel,
    rebuild,
)
from levit_tf.training.adapt import adapt_classifier
from levit_tf.training.data_sources import DataSplits, check_folder_classes, load_data
from levit_tf.training.distribute import is_chief, make_strategy
from levit_tf.training.optimizers import adamw, warmup_cosine
from levit_tf.training.options import MONITOR, FinetuneOptions
from levit_tf.training.precision import MIXED_BFLOAT16
from levit_tf.training.run_dir import RunCheckpoint, RunDirectory, RunState
from levit_tf.utils.backends import require_tensorflow_backend
from levit_tf.utils.image_size import ImageSize, format_size, image_hw


@dataclasses.dataclass
class FinetuneResult:
    """What a run did. ``history``: every epoch so far (from the log, resumed ones included);
    ``epoch_seconds``: training time of each epoch this session ran (validation excluded)."""

    model: LevitForImageClassification
    run: RunDirectory
    data: DataSplits
    image_size: ImageSize  # as LevitConfig.image_size
    history: dict[str, list[float]]
    epochs_done: int
    resumed_from: int
    best: float | None
    best_epoch: int | None
    epoch_seconds: list[float]
    wall_seconds: float

    @property
    def final_val_accuracy(self) -> float | None:
        values = self.history.get(MONITOR)
        return values[-1] if values else None

    @property
    def images_per_second(self) -> float | None:
        """Training throughput, leaving out this session's first epoch (graph tracing)."""
        seconds = self.epoch_seconds[1:] or self.epoch_seconds
        return self.data.num_train * len(seconds) / sum(seconds) if seconds else None


def is_preset(source: str) -> bool:
    """A preset name (random init) rather than a path or hub id."""
    return canonical_preset_name(source) is not None and not Path(source).exists() and (
        "/" not in source)


def model_class_for(options: FinetuneOptions) -> type[LevitForImageClassification] | None:
    """WithTeacher for hard distillation; otherwise None (= what the checkpoint holds)."""
    return LevitForImageClassificationWithTeacher if options.distillation == "hard" else None


def load_source(options: FinetuneOptions) -> LevitPreTrainedModel | None:
    """The pretrained model of ``options.model`` (None for a preset: random init)."""
    from levit_tf.converters import load_pretrained

    if is_preset(options.model):
        return None
    if options.image_size is None:
        return load_pretrained(options.model)
    # another input size: every attention-bias table is resized (levit_tf.models.levit.resolution)
    return load_pretrained(options.model, image_size=options.image_size)


def build_student(options: FinetuneOptions, source: LevitPreTrainedModel | None,
                  class_names: list[str], image_size: ImageSize) -> LevitForImageClassification:
    """The model to train: a preset at random init (``source`` None), or ``source`` with heads
    for ``class_names`` (kept if the label count matches) and the run's policy."""
    id2label = dict(enumerate(class_names))
    policy = MIXED_BFLOAT16 if options.mixed_bfloat16 else "float32"
    cls = model_class_for(options)
    if source is None:
        overrides: dict[str, Any] = {"image_size": image_size, "id2label": id2label}
        if options.drop_path is not None:
            overrides["drop_path_rate"] = options.drop_path
        config = LevitConfig.from_preset(options.model, **overrides)
        cls = cls or LevitForImageClassification
        config.architectures = [cls.__name__]
        return cls(config, dtype=policy)
    if options.drop_path is not None and options.drop_path != source.config.drop_path_rate:
        source = _with_drop_path(source, options.drop_path)
    if cls is None:
        cls = (type(source) if isinstance(source, LevitForImageClassification)
               else LevitForImageClassification)
    return adapt_classifier(source, cls, id2label, dtype=policy)


def _with_drop_path(model: LevitPreTrainedModel, rate: float) -> LevitPreTrainedModel:
    return rebuild(model, LevitConfig.from_dict(model.config.to_dict(), drop_path_rate=rate))


def load_teacher(path: str, image_size: ImageSize, num_labels: int) -> keras.Model:
    """A teacher for hard distillation: any LeViT source, or any ``.keras`` Keras model that
    maps (B, H, W, 3) pixels to ``num_labels`` logits (or a dict with ``logits``)."""
    from levit_tf.converters import ConversionError, load_pretrained

    try:
        teacher = load_pretrained(path)
    except ConversionError as err:
        if not str(path).endswith(".keras") or not Path(path).is_file():
            raise ValueError(f"teacher {path}: {err}") from None
        teacher = keras.saving.load_model(path, compile=False)
    teacher.trainable = False
    outputs = teacher(np.zeros((1, *image_hw(image_size), 3), np.float32), training=False)
    logits = outputs["logits"] if isinstance(outputs, dict) else outputs
    if tuple(logits.shape) != (1, num_labels):
        raise ValueError(f"teacher {path} returns logits of shape {tuple(logits.shape)} for one "
                         f"image, expected (1, {num_labels}) (the data has {num_labels} classes)")
    return teacher


def compile_student(model: LevitForImageClassification, options: FinetuneOptions,
                    steps_per_epoch: int, teacher: keras.Model | None) -> None:
    """The recipe: AdamW with warmup-cosine per step, label-smoothed CE, accuracy."""
    total = options.epochs * steps_per_epoch
    warmup = min(round(options.warmup_epochs * steps_per_epoch), total - 1)
    schedule = warmup_cosine(options.lr, total, warmup)
    kwargs: dict[str, Any] = {}
    if isinstance(model, LevitForImageClassificationWithTeacher):
        kwargs = {"distillation": options.distillation, "teacher": teacher}
    model.compile(optimizer=adamw(model, schedule, options.weight_decay),
                  loss=SparseCrossEntropy(options.label_smoothing), metrics=["accuracy"],
                  **kwargs)


def finetune(options: FinetuneOptions, strategy: Any = None) -> FinetuneResult:
    """Runs (or resumes) a fine-tuning run; see the module docstring. ``strategy``: a
    ``tf.distribute.Strategy`` instead of ``options.strategy``'s (e.g. MirroredStrategy over
    listed devices). Raises ValueError / FileNotFoundError for bad options, data or sources
    (the CLI shows them as one line)."""
    require_tensorflow_backend("levit-tf finetune")
    start = time.perf_counter()
    options.validate()
    run = RunDirectory(options.out)
    state = run.load_state()
    if state is not None and state.settings != options.settings():
        changed = sorted(k for k in options.settings()
                         if state.settings.get(k) != options.settings()[k])
        raise ValueError(f"{run.root} holds a run with different settings ({', '.join(changed)}"
                         "); use a new --out directory or the same settings to resume")
    check_folder_classes(options.data)
    strategy = strategy or make_strategy(options.strategy)  # before other TensorFlow calls
    if not is_chief(strategy):  # reads `out`, writes a temporary copy
        writer = RunDirectory(tempfile.mkdtemp(prefix="levit-tf-worker-"))
        try:
            if state is not None and run.log.is_file():
                shutil.copyfile(run.log, writer.log)
                writer.trim_log(state.epochs_done)
            return _run(options, strategy, run, writer, state, start)
        finally:
            shutil.rmtree(writer.root, ignore_errors=True)
    created = not run.root.exists()
    run.prepare()
    try:
        return _run(options, strategy, run, run, state, start)
    except BaseException:  # failed or interrupted before its first epoch: no empty --out
        if created:
            run.remove_if_empty()
        raise


def _run(options: FinetuneOptions, strategy: Any, run: RunDirectory, writer: RunDirectory,
         state: RunState | None, start: float) -> FinetuneResult:
    """Trains from ``run``'s state; ``writer`` (``run`` on the chief) gets the files."""
    if state is not None and writer is run:
        run.trim_log(state.epochs_done)
    state = state or RunState(monitor=MONITOR, settings=options.settings())
    resumed_from = state.epochs_done
    keras.utils.set_random_seed(options.seed + resumed_from)

    with strategy.scope():
        source = load_source(options)
        image_size = source.config.image_size if source else options.image_size or 224
        data = load_data(options.data, image_size, options.batch_size, options.seed,
                         options.val_fraction, options.augment)
        model = build_student(options, source, data.class_names, image_size)
        if options.freeze_backbone:
            model.freeze_backbone()
        teacher = (load_teacher(options.teacher, image_size, len(data.class_names))
                   if options.teacher else None)
        steps_per_epoch = math.ceil(data.num_train / options.batch_size)
        compile_student(model, options, steps_per_epoch, teacher)
        if resumed_from:
            model.optimizer.build(model.trainable_variables)
            model.load_weights(run.last)

    title = f"{Path(options.model).name} on {options.data}, {format_size(image_size)}px"
    checkpoint = RunCheckpoint(writer, state, title)
    if resumed_from < options.epochs:
        model.fit(data.train, validation_data=data.val, epochs=options.epochs,
                  initial_epoch=resumed_from, callbacks=[checkpoint], verbose=options.verbose,
                  shuffle=False)  # the datasets shuffle themselves (seeded)
    from levit_tf.training.curves import read_log

    history = read_log(writer.log) if writer.log.is_file() else {}
    return FinetuneResult(
        model=model, run=run, data=data, image_size=image_size, history=history,
        epochs_done=state.epochs_done, resumed_from=resumed_from, best=state.best,
        best_epoch=state.best_epoch, epoch_seconds=checkpoint.epoch_seconds,
        wall_seconds=time.perf_counter() - start)


__all__ = ["FinetuneOptions", "FinetuneResult", "build_student", "compile_student", "finetune",
           "load_source", "load_teacher"]
