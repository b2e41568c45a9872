"""``evaluate``: every artefact on the same labelled images, one image per call, timed.

The images are handled in chunks (as many as fit ``CHUNK_BYTES`` of pixels): each chunk is
decoded and eval-transformed once per input size, then every artefact runs over it one image at
a time, so no preprocessing runs while a model is timed. Each artefact runs once untimed first
(graph tracing, LiteRT set-up).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import numpy as np

from levit_tf.evaluation.artefacts import Artefact, load_artefact
from levit_tf.evaluation.data import LabelledImages, eval_pixels, load_labelled_images
from levit_tf.evaluation.metrics import agreement, label_positions, score
from levit_tf.evaluation.results import ArtefactResult, Evaluation, short_names
from levit_tf.evaluation.sources import EvaluationError, check_options
from levit_tf.utils.native_logs import capture_native_stderr

CHUNK_BYTES = 256 * 2**20


def evaluate(models: str | os.PathLike | Sequence[str | os.PathLike],
             data: str | os.PathLike | LabelledImages, *, accelerator: str = "cpu",
             num_threads: int = 1, limit: int | None = None,
             progress: bool = True) -> Evaluation:
    """Accuracy, latency and size of each model file on the same labelled images.

    Args:
        models: ``.keras`` (or any ``levit-tf convert`` source), SavedModel folders
            (``levit-tf export-savedmodel``) and ``.tflite`` files of any mode, in any mix;
            the first is the reference for ``agreement``.
        data: ``DIR`` (``DIR/<class>/<image>``, or its ``val/`` beside ``train/``),
            ``tfds:NAME[:SPLIT]`` or ``digits`` (see ``levit_tf.evaluation.sources``).
            Classes are matched to each model's labels by name.
        accelerator: 'cpu' or 'gpu' for .tflite files (LiteRT's GPU accelerator; see
            ``levit-tf gpu-runtime``); TensorFlow runs the others on its own device.
        num_threads: LiteRT CPU threads.
        limit: evaluate a seeded random subset of this many images.
        progress: a progress bar over the images (tqdm, on stderr).

    Returns:
        an ``Evaluation``; ``.results[i]`` is the ``ArtefactResult`` of ``models[i]``.

    Raises:
        EvaluationError: a missing / unreadable model or data source, an empty class folder, a
            data class that is not one of a model's labels (one line naming it).
    """
    paths = [models] if isinstance(models, str | os.PathLike) else list(models)
    if not paths:
        raise EvaluationError("no model to evaluate")
    check_options(accelerator, num_threads, limit)
    images = (data if isinstance(data, LabelledImages)
              else load_labelled_images(os.fspath(data), limit))
    if not len(images):
        raise EvaluationError(f"{images.description}: no images")
    artefacts, positions = [], []
    for path in paths:  # each model's labels are checked as it loads: a mismatch fails early
        artefact = load_artefact(path, accelerator, num_threads)
        positions.append(label_positions(images.class_names, artefact.labels, artefact.path))
        artefacts.append(artefact)
    scores, seconds = run_all(artefacts, images, progress)
    results: list[ArtefactResult] = []
    for artefact, where, logits, times in zip(artefacts, positions, scores, seconds,
                                              strict=True):
        measured = score(logits, images.labels, where, len(images.class_names))
        predictions = [artefact.labels[i] for i in measured.predicted]
        results.append(ArtefactResult(
            path=artefact.path, kind=artefact.kind, variant=artefact.variant,
            input=artefact.input, device=artefact.device, images=len(images),
            num_labels=len(artefact.labels), top1=measured.top1, top5=measured.topk,
            top_k=measured.k,
            per_class={name: None if np.isnan(value) else float(value)  # None: no images
                       for name, value in zip(images.class_names, measured.per_class,
                                              strict=True)},
            agreement=(agreement(predictions, results[0].predictions) if results else None),
            latency_ms=float(times.mean() * 1000), latency_median_ms=float(
                np.median(times) * 1000),
            size_bytes=artefact.size_bytes, confusion=measured.confusion.tolist(),
            predictions=predictions))
    from levit_tf.utils.cpu_features import cpu_model, int8_capability

    counts = np.bincount(images.labels, minlength=len(images.class_names))
    return Evaluation(
        data=images.description, class_names=list(images.class_names),
        class_counts=[int(c) for c in counts], image_ids=list(images.ids),
        targets=[images.class_names[i] for i in images.labels], skipped=images.skipped,
        cpu=f"{cpu_model()} ({int8_capability()})", results=results)


def run_all(artefacts: Sequence[Artefact], images: LabelledImages, progress: bool = True
            ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(scores (N, L) per artefact, seconds (N,) of each image's call per artefact)."""
    from tqdm.auto import tqdm

    count = len(images)
    sizes = sorted({a.image_size for a in artefacts if a.image_size is not None})
    per_image = sum(h * w * 3 * 4 for h, w in sizes) or 1
    chunk = max(1, min(count, CHUNK_BYTES // per_image))
    scores = [np.zeros((count, len(a.labels)), np.float32) for a in artefacts]
    seconds = [np.zeros(count) for _ in artefacts]
    warm = [False] * len(artefacts)
    names = short_names([a.path for a in artefacts])
    with tqdm(total=count * len(artefacts), unit="image", desc="evaluating", leave=False,
              disable=not progress) as bar:
        for start in range(0, count, chunk):
            indices = range(start, min(count, start + chunk))
            encoded = images.encoded(indices)
            pixels = {size: eval_pixels(encoded, size) for size in sizes}
            for a, artefact in enumerate(artefacts):
                bar.set_description(names[a])
                inputs = artefact.inputs(encoded, pixels.get(artefact.image_size))
                if not warm[a]:  # untimed; a runtime's first-run log lines stay off stderr
                    with capture_native_stderr():
                        artefact.run(inputs[0])
                    warm[a] = True
                for offset, image in enumerate(inputs):
                    begin = time.perf_counter()
                    out = artefact.run(image)
                    seconds[a][start + offset] = time.perf_counter() - begin
                    scores[a][start + offset] = out
                    bar.update(1)
    return scores, seconds


__all__ = ["CHUNK_BYTES", "evaluate", "run_all"]
