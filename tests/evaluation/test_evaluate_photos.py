"""``evaluate`` on real photos: the crop task of benchmarks/int8_fidelity.py ("which of 12 photos
is this crop from", held-out crops from a part of each photo training never saw), half the
held-out crops as JPEG. A tiny LeViT fine-tuned briefly, its SavedModel and a uint8-input int8
.tflite; the reference preprocessing is Hugging Face's PIL LevitImageProcessor on the files."""

from __future__ import annotations

import time
from importlib import import_module
from pathlib import Path

import keras
import numpy as np
import PIL.Image
import pytest

import levit_tf
from levit_tf import LevitForImageClassification
from levit_tf.export.saved_model import export_saved_model
from levit_tf.tflite import TFLiteModel, export
from levit_tf.tflite.calibration import to_input_domain
from levit_tf.training.finetune import finetune
from levit_tf.training.options import FinetuneOptions

SIZE = 32
NEAR_TIE = 1e-3  # see test_evaluate_digits.py


@pytest.fixture(scope="module")
def crops(tmp_path_factory) -> Path:
    """root/{train,val}/<photo>/: 24 training and 8 held-out crops per photo; every other
    held-out crop re-saved as JPEG (the decoder's PIL-exact path)."""
    root = tmp_path_factory.mktemp("photo_crops")
    import_module("benchmarks.int8_fidelity").write_crops(root, {"train": 24, "val": 8})
    for i, path in enumerate(sorted((root / "val").rglob("*.png"))):
        if i % 2:
            PIL.Image.open(path).convert("RGB").save(path.with_suffix(".jpg"), quality=90)
            path.unlink()
    return root


@pytest.fixture(scope="module")
def artefacts(crops, tmp_path_factory, tiny_config) -> list[Path]:
    """best.keras of a short fine-tuning on the crops (no augmentation: its graph traces in
    half the time), its SavedModel and its int8 .tflite with raw uint8 input (calibrated on 48
    training crops)."""
    work = tmp_path_factory.mktemp("photo_models")
    keras.utils.set_random_seed(0)
    LevitForImageClassification(tiny_config()).save(work / "tiny.keras")
    start = time.perf_counter()
    result = finetune(FinetuneOptions(model=str(work / "tiny.keras"), data=str(crops),
                                      epochs=4, out=str(work / "run"), lr=3e-3, seed=0,
                                      batch_size=32, augment=False, verbose=0))
    saved = export_saved_model(LevitForImageClassification.from_pretrained(result.run.best),
                               work / "serving" / "1")
    int8 = export(LevitForImageClassification.from_pretrained(result.run.best),
                  work / "crops_int8.tflite", "int8", calibration_data=str(crops / "train"),
                  calibration_steps=48, uint8_input=True).path
    print(f"fine-tuned ({result.best:.3f}) and exported in {time.perf_counter() - start:.1f} s")
    return [result.run.best, saved, int8]


def reference_pixels(crops: Path, processor_cls) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Every held-out crop through HF's PIL processor: (N, 32, 32, 3), labels, class names."""
    processor = processor_cls(size={"shortest_edge": SIZE},
                              crop_size={"height": SIZE, "width": SIZE})
    classes = sorted(p.name for p in (crops / "val").iterdir())
    pixels, labels = [], []
    for index, name in enumerate(classes):
        for path in sorted((crops / "val" / name).iterdir()):
            image = PIL.Image.open(path).convert("RGB")
            pixels.append(processor(image, return_tensors="np")["pixel_values"][0])
            labels.append(index)
    return np.stack(pixels).transpose(0, 2, 3, 1), np.asarray(labels), classes


def test_photo_crops_numbers_equal_an_independent_computation(crops, artefacts,
                                                              hf_pil_processor_cls):
    start = time.perf_counter()
    evaluation = levit_tf.evaluate(artefacts, crops, progress=False)
    seconds = time.perf_counter() - start
    pixels, labels, classes = reference_pixels(crops, hf_pil_processor_cls)
    assert evaluation.class_names == classes and len(classes) == 12
    assert evaluation.data == f"folder {crops / 'val'}" and len(evaluation.image_ids) == 96
    assert sum(i.endswith(".jpg") for i in evaluation.image_ids) == 48
    assert evaluation.targets == [classes[i] for i in labels]
    keras_result, saved_result, int8_result = evaluation.results

    # the uint8-input .tflite sees the same uint8 crops: its predictions are equal exactly
    model = TFLiteModel(artefacts[2])
    logits = model(to_input_domain(pixels, model.input_mode))
    positions = [model.id2label[i] for i in range(len(classes))]
    assert positions == classes
    predicted = logits.argmax(1)
    assert int8_result.predictions == [classes[i] for i in predicted]
    assert int8_result.top1 == pytest.approx(np.mean(predicted == labels), abs=1e-12)
    top5 = np.argsort(-logits, axis=1, kind="stable")[:, :5]
    assert int8_result.top5 == pytest.approx(np.mean((top5 == labels[:, None]).any(1)),
                                             abs=1e-12)
    for index, name in enumerate(classes):
        chosen = labels == index
        assert int8_result.per_class[name] == pytest.approx(
            np.mean(predicted[chosen] == index), abs=1e-12)

    # Keras and the SavedModel (encoded files, its own in-graph transform) against the Keras
    # model's logits on HF's pixels: equal but where the two best logits nearly tie
    keras_model = LevitForImageClassification.from_pretrained(artefacts[0])
    reference = np.asarray(keras_model.predict(pixels, verbose=0)["logits"])
    ordered = np.sort(reference, axis=1)
    near_tie = ordered[:, -1] - ordered[:, -2] < NEAR_TIE
    for result in (keras_result, saved_result):
        ours = np.asarray([classes.index(p) for p in result.predictions])
        differ = ours != reference.argmax(1)
        assert not (differ & ~near_tie).any(), result.path
        assert abs(result.top1 - np.mean(reference.argmax(1) == labels)) <= differ.mean() + 1e-12
    assert keras_result.top1 > 2 / 12  # it learned something (chance: 1/12)
    print(f"\nphoto crops: evaluate() of 3 models x 96 crops in {seconds:.1f} s; top-1 "
          f"keras {keras_result.top1:.3f}, SavedModel {saved_result.top1:.3f}, int8 "
          f"{int8_result.top1:.3f}")
