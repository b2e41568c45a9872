"""``levit-tf evaluate`` on the held-out handwritten digits: a tiny LeViT fine-tuned for a few
epochs, its SavedModel and every .tflite mode (uint8 input too), and a .tflite of another
checkpoint, in one run of the installed entry point. Every number is checked against an
independent computation: finetune's own preprocessing of the digits (``preprocess_digits``, not
the PNG path ``evaluate`` takes), the models' logits on it, and numpy counts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

import levit_tf
from levit_tf import LevitForImageClassification
from levit_tf.evaluation import ArtefactResult, EvaluationError
from levit_tf.export.saved_model import export_saved_model
from levit_tf.tflite import TFLiteModel, export
from levit_tf.tflite.calibration import to_input_domain
from levit_tf.training.digits import CLASS_NAMES, load_digits_split, preprocess_digits
from levit_tf.training.finetune import finetune
from levit_tf.training.options import FinetuneOptions

DIGIT_LABELS = {i: name for i, name in enumerate(CLASS_NAMES)}
#: .tflite exports: name -> (mode, export keyword arguments)
TFLITE_MODES = {
    "float32": ("float32", {}), "float16": ("float16", {}), "dynamic": ("dynamic", {}),
    "int8": ("int8", {}), "int16x8": ("int16x8", {}), "int8_uint8": ("int8", {"uint8_input": True}),
}
# Keras (batched predict) vs the artefact's batch-1 run: a different top-1 is allowed only where
# the reference's two best logits are this close (float32 reassociation is ~1e-6 on logits ~3;
# the SavedModel's folded graph ~1e-5).
NEAR_TIE = 1e-3


def levit_tf_cli() -> str:
    return str(Path(sys.executable).with_name("levit-tf"))


def run_cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}
    return subprocess.run([levit_tf_cli(), *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("evaluate_digits")


@pytest.fixture(scope="module")
def start_checkpoint(work, tiny_config) -> Path:
    """A seeded tiny model with 4 labels (LABEL_0..3): finetune gives it the 10 digits."""
    path = work / "tiny.keras"
    keras.utils.set_random_seed(0)
    LevitForImageClassification(tiny_config()).save(path)
    return path


@pytest.fixture(scope="module")
def trained(work, start_checkpoint) -> Path:
    """best.keras of 4 epochs on the digits at 32 px (seed 0: the split evaluate's 'digits'
    holds out)."""
    start = time.perf_counter()
    result = finetune(FinetuneOptions(model=str(start_checkpoint), data="digits", epochs=4,
                                      out=str(work / "run"), lr=3e-3, seed=0, verbose=0))
    print(f"fine-tuned in {time.perf_counter() - start:.1f} s, held-out accuracy "
          f"{result.best:.3f}")
    return result.run.best


@pytest.fixture(scope="module")
def heldout() -> tuple[np.ndarray, np.ndarray]:
    """finetune's held-out digits through finetune's own array pipeline: (N, 32, 32, 3), (N,)."""
    split = load_digits_split(0.2, 0)
    return preprocess_digits(split.val_images, split.val_labels, 32), split.val_labels


@pytest.fixture(scope="module")
def exports(work, trained, tiny_config) -> dict[str, Path]:
    """The SavedModel, every .tflite mode, and 'other': a float32 .tflite of a randomly
    initialized model with the same ten labels (another checkpoint)."""
    start = time.perf_counter()
    model = levit_tf.LevitForImageClassification.from_pretrained(trained)
    split = load_digits_split(0.2, 0)
    calibration = preprocess_digits(split.train_images[:100], split.train_labels[:100], 32)
    paths = {"savedmodel": export_saved_model(model, work / "serving" / "1")}
    for name, (mode, kwargs) in TFLITE_MODES.items():
        if mode in ("int8", "int16x8"):
            kwargs = {**kwargs, "calibration_data": calibration}
        paths[name] = export(model, work / f"digits_{name}.tflite", mode, **kwargs).path
    keras.utils.set_random_seed(5)
    other = LevitForImageClassification(tiny_config(num_labels=10, id2label=DIGIT_LABELS))
    paths["other"] = export(other, work / "other_checkpoint.tflite").path
    print(f"exported in {time.perf_counter() - start:.1f} s")
    return paths


@pytest.fixture(scope="module")
def cli_run(work, trained, exports) -> tuple[subprocess.CompletedProcess, dict, list[str]]:
    """One ``levit-tf evaluate`` over every artefact, with --json and --plot."""
    models = [str(trained), str(exports["savedmodel"]),
              *(str(exports[name]) for name in (*TFLITE_MODES, "other"))]
    start = time.perf_counter()
    done = run_cli("evaluate", *models, "--data", "digits", "--json", str(work / "eval.json"),
                   "--plot", str(work / "eval.png"))
    print(f"levit-tf evaluate ({len(models)} models x 359 images) in "
          f"{time.perf_counter() - start:.1f} s\n{done.stdout}")
    assert done.returncode == 0, done.stderr[-3000:]
    return done, json.loads((work / "eval.json").read_text()), models


def independent(logits: np.ndarray, targets: np.ndarray) -> dict:
    """top-1 / top-5 / per-class / confusion from logits whose output i is class i, written
    out without levit_tf: top-5 by rank (outputs above the true one, plus equal ones at lower
    indices: argmax's tie rule)."""
    predicted = logits.argmax(1)
    correct = predicted == targets
    true = logits[np.arange(len(targets)), targets]
    index = np.arange(logits.shape[1])
    rank = ((logits > true[:, None]).sum(1)
            + ((logits == true[:, None]) & (index[None] < targets[:, None])).sum(1))
    confusion = np.zeros((10, 11), int)
    for t, p in zip(targets, predicted, strict=True):
        confusion[t, p] += 1
    return {"top1": correct.mean(), "top5": (rank < 5).mean(), "predicted": predicted,
            "per_class": {CLASS_NAMES[c]: correct[targets == c].mean() for c in range(10)},
            "confusion": confusion.tolist()}


def test_cli_writes_table_json_and_plot(cli_run, exports):
    done, report, models = cli_run
    assert len(report["results"]) == len(models) and len(report["image_ids"]) == 359
    assert report["class_names"] == list(CLASS_NAMES) and sum(report["class_counts"]) == 359
    for model, result in zip(models, report["results"], strict=True):
        row = next(line for line in done.stdout.splitlines() if line.startswith(model + " "))
        assert f"{result['top1']:.2%}" in row and f"{result['top5']:.2%}" in row
        assert result["size_bytes"] > 0
        assert 0 < result["latency_ms"] < 1000
    kinds = [(r["kind"], r["variant"], r["input"]) for r in report["results"]]
    assert kinds[:2] == [("keras", "float32", "float32 pixels"),
                         ("savedmodel", "serve_images", "encoded image")]
    assert [k[1] for k in kinds[2:]] == [m for m, _ in TFLITE_MODES.values()] + ["float32"]
    assert kinds[2 + list(TFLITE_MODES).index("int8_uint8")][2] == "uint8 RGB"
    assert "int8 dot product" in done.stdout or "no int8 dot product" in done.stdout
    assert "per-class top-1 accuracy:" in done.stdout
    assert (Path(models[0]).parent.parent / "eval.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the SavedModel carries its labels as an asset
    labels = (exports["savedmodel"] / "assets.extra" / "labels.txt").read_text()
    assert labels == "".join(f"{name}\n" for name in CLASS_NAMES)


def test_tflite_numbers_equal_an_independent_computation(cli_run, heldout):
    """Same runtime, same inputs (finetune's pixels in the file's input domain): the
    predictions, and so every metric, are equal exactly."""
    _, report, models = cli_run
    pixels, targets = heldout
    keras_predicted = np.asarray(report["results"][0]["predictions"])
    for path, result in zip(models[2:], report["results"][2:], strict=True):
        model = TFLiteModel(path)
        expected = independent(model(to_input_domain(pixels, model.input_mode)), targets)
        assert result["predictions"] == [CLASS_NAMES[i] for i in expected["predicted"]], path
        assert result["top1"] == pytest.approx(expected["top1"], abs=1e-12), path
        assert result["top5"] == pytest.approx(expected["top5"], abs=1e-12), path
        assert result["per_class"] == pytest.approx(expected["per_class"], abs=1e-12), path
        assert result["confusion"] == expected["confusion"], path
        agreement = np.mean(np.asarray(result["predictions"]) == keras_predicted)
        assert result["agreement"] == pytest.approx(agreement, abs=1e-12), path


def test_keras_and_savedmodel_numbers_equal_an_independent_computation(cli_run, heldout,
                                                                       trained):
    _, report, _ = cli_run
    pixels, targets = heldout
    model = LevitForImageClassification.from_pretrained(trained)
    logits = np.asarray(model.predict(pixels, batch_size=64, verbose=0)["logits"])
    expected = independent(logits, targets)
    ordered = np.sort(logits, axis=1)
    near_tie = ordered[:, -1] - ordered[:, -2] < NEAR_TIE
    for result in report["results"][:2]:
        predicted = np.asarray([CLASS_NAMES.index(p) for p in result["predictions"]])
        differ = predicted != expected["predicted"]
        assert not (differ & ~near_tie).any(), (result["path"], np.flatnonzero(differ))
        slack = differ.sum() / len(targets)  # 0 unless a near-tie flipped
        assert abs(result["top1"] - expected["top1"]) <= slack + 1e-12
        assert abs(result["top5"] - expected["top5"]) <= slack + 1e-12
    assert report["results"][1]["agreement"] >= 1 - near_tie.mean()
    # a tiny model, 4 epochs: well above chance (0.1)
    assert expected["top1"] > 0.5


def test_another_checkpoints_export_shows_its_low_accuracy(cli_run, heldout):
    _, report, models = cli_run
    other = report["results"][-1]
    assert other["path"].endswith("other_checkpoint.tflite")
    model = TFLiteModel(models[-1])
    expected = independent(model(to_input_domain(heldout[0], model.input_mode)), heldout[1])
    assert other["top1"] == pytest.approx(expected["top1"], abs=1e-12)
    assert other["top1"] < 0.3  # chance is 0.1; the fine-tuned model scores > 0.5
    assert report["results"][0]["top1"] > 0.5
    assert other["agreement"] < 0.5


def test_python_api_returns_the_same_numbers(cli_run, trained, exports):
    _, report, _ = cli_run
    evaluation = levit_tf.evaluate([trained, exports["int8_uint8"]], "digits", progress=False)
    assert all(isinstance(r, ArtefactResult) for r in evaluation.results)
    by_path = {r["path"]: r for r in report["results"]}
    for result in evaluation.results:
        expected = by_path[result.path]
        assert result.predictions == expected["predictions"]
        assert (result.top1, result.top5, result.per_class) == (
            expected["top1"], expected["top5"], expected["per_class"])
    assert evaluation.results[1].agreement == pytest.approx(
        np.mean(np.asarray(by_path[str(exports["int8_uint8"])]["predictions"])
                == np.asarray(report["results"][0]["predictions"])), abs=1e-12)
    # --limit: a seeded subset, each image predicted as in the whole run
    subset = levit_tf.evaluate(exports["int8_uint8"], "digits", limit=50, progress=False)
    where = [report["image_ids"].index(i) for i in subset.image_ids]
    assert len(set(where)) == 50 and where == sorted(where)
    expected = by_path[str(exports["int8_uint8"])]["predictions"]
    assert subset.results[0].predictions == [expected[i] for i in where]


def test_savedmodel_exported_before_the_labels_asset(work, trained, cli_run):
    """An export made before assets.extra/labels.txt existed: labels from serve_images' table."""
    from levit_tf.export.saved_model import serving_archive
    from levit_tf.models.levit.inference import optimize_for_inference

    model = LevitForImageClassification.from_pretrained(trained)
    folder = work / "serving_old"
    serving_archive(optimize_for_inference(model)).write_out(str(folder), verbose=False)
    assert not (folder / "assets.extra" / "labels.txt").exists()
    result = levit_tf.evaluate(folder, "digits", progress=False).results[0]
    assert result.predictions == cli_run[1]["results"][1]["predictions"]


def test_tfds_source_gives_the_same_numbers(work, exports, cli_run):
    """The same held-out digits as a prepared TFDS dataset: the same accuracy (TFDS stores its
    own order; the per-class numbers are order-free)."""
    tfds = pytest.importorskip("tensorflow_datasets")

    class LevitEvalDigits(tfds.core.GeneratorBasedBuilder):
        # tfds 4.9.10 looks for a builder's files (checksums, metadata) through
        # importlib_resources when its module sits in a package, and etils no longer installs
        # that: a top-level module name skips the look-up (this builder has no such files),
        # and _info builds the DatasetInfo itself
        __module__ = "levit_eval_digits_builder"
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(8, 8, 1)),
                "label": tfds.features.ClassLabel(names=list(CLASS_NAMES))}))

        def _split_generators(self, dl_manager):
            return {"test": self._generate_examples()}

        def _generate_examples(self):
            split = load_digits_split(0.2, 0)
            for i, (image, label) in enumerate(zip(split.val_images, split.val_labels,
                                                   strict=True)):
                yield i, {"image": image[..., None], "label": int(label)}

    data_dir = work / "tfds"
    LevitEvalDigits(data_dir=str(data_dir)).download_and_prepare()
    tfds.core.add_data_dir(str(data_dir))
    evaluation = levit_tf.evaluate(exports["int8_uint8"], "tfds:levit_eval_digits",
                                   progress=False)
    assert evaluation.data == "TFDS levit_eval_digits (test)"
    expected = next(r for r in cli_run[1]["results"] if r["path"] == str(exports["int8_uint8"]))
    result = evaluation.results[0]
    assert result.images == 359
    assert result.top1 == pytest.approx(expected["top1"], abs=1e-12)
    assert result.per_class == pytest.approx(expected["per_class"], abs=1e-12)


def test_label_set_mismatch_is_one_line(work, start_checkpoint):
    """The 4-label start checkpoint (LABEL_0..3) on the digits: refused, exit 1, no JSON."""
    target = work / "mismatch.json"
    done = run_cli("evaluate", str(start_checkpoint), "--data", "digits", "--json",
                   str(target))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"levit-tf evaluate: error: {start_checkpoint}: data class '0' "
                               "(and 9 more data classes) is not one of its labels ['LABEL_0'")
    assert not target.exists() and done.stdout == ""


def test_unreadable_class_folder_is_refused(tmp_path, trained):
    (tmp_path / "0").mkdir()
    (tmp_path / "1").mkdir()
    (tmp_path / "0" / "a.png").write_bytes(b"not a png")
    from PIL import Image

    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "1" / "b.png")
    with pytest.warns(UserWarning, match="a.png: not a readable image"), pytest.raises(
            EvaluationError, match=r"class folder .*/0 holds no readable images"):
        levit_tf.evaluate(trained, tmp_path, progress=False)


def test_no_gpu_is_one_line(exports, tmp_path):
    """--accelerator gpu without a usable Vulkan driver: LiteRT's machinery says so in one line
    (naming gpu-runtime), exit 1."""
    env = {"VK_DRIVER_FILES": str(tmp_path / "none.json"),
           "VK_ICD_FILENAMES": str(tmp_path / "none.json")}
    done = subprocess.run([levit_tf_cli(), "evaluate", str(exports["float32"]), "--data",
                           "digits", "--accelerator", "gpu"], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=300)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("levit-tf evaluate: error: --accelerator gpu:")
    assert "gpu-runtime" in lines[0] and done.stdout == ""


@pytest.mark.slow  # lavapipe (fetched fresh under CI) and a cold shader compile
def test_gpu_accelerator_on_lavapipe(exports, cli_run, heldout, tmp_path):
    """LiteRT's GPU accelerator (Mesa's software Vulkan): the float32 file fully on the GPU, its
    predictions the CPU's except where the CPU's two best logits are closer than float16 GPU
    math moves them (0.02 x max|logit|, tests/tflite/devices/test_gpu.py's bound)."""
    from levit_tf.tflite.devices import lavapipe

    cache = tmp_path / "lavapipe" if os.environ.get("CI") == "true" else None
    lavapipe.activate(lavapipe.prepare(cache), shader_cache=tmp_path / "shader-cache")
    result = levit_tf.evaluate(exports["float32"], "digits", accelerator="gpu",
                               progress=False).results[0]
    assert result.device == "LiteRT GPU"
    model = TFLiteModel(exports["float32"])
    logits = model(heldout[0])
    ordered = np.sort(logits, axis=1)
    close = ordered[:, -1] - ordered[:, -2] < 0.02 * np.abs(logits).max()
    differ = np.asarray(result.predictions) != np.asarray([CLASS_NAMES[i]
                                                           for i in logits.argmax(1)])
    assert not (differ & ~close).any()
    assert abs(result.top1 - np.mean(logits.argmax(1) == heldout[1])) <= differ.mean() + 1e-12


def test_model_with_more_labels_than_the_data_has_classes(tmp_path, exports, cli_run):
    """The held-out 3s and 8s as PNG files in a folder of two classes: each image predicted as
    in the whole run; a prediction outside {3, 8} is wrong and counted in the 'other' column."""
    from PIL import Image

    split = load_digits_split(0.2, 0)
    report = cli_run[1]
    path = str(exports["int8_uint8"])
    predictions = next(r for r in report["results"] if r["path"] == path)["predictions"]
    expected, targets = [], []
    for index, (image, label) in enumerate(zip(split.val_images, split.val_labels,
                                               strict=True)):
        if label in (3, 8):
            folder = tmp_path / str(label)
            folder.mkdir(exist_ok=True)
            Image.fromarray(image).save(folder / f"{index:03d}.png")
            expected.append(predictions[index])
            targets.append(str(label))
    # the folder lists class 3's files, then class 8's
    order = np.argsort([t == "8" for t in targets], kind="stable")
    expected, targets = [expected[i] for i in order], [targets[i] for i in order]
    result = levit_tf.evaluate(path, tmp_path, progress=False).results[0]
    assert result.predictions == expected
    assert result.top1 == pytest.approx(np.mean(np.asarray(expected) == np.asarray(targets)),
                                        abs=1e-12)
    other = [sum(p not in ("3", "8") for p, t in zip(expected, targets, strict=True) if t == c)
             for c in ("3", "8")]
    assert [row[2] for row in result.confusion] == other
