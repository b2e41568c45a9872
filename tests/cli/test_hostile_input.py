"""Issue 15: each case an adversarial pass found (wrong output, unreadable files, tracebacks,
misleading messages) with the behaviour it must have now. One tiny model, exported once."""

from __future__ import annotations

import importlib
import io
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import keras
import numpy as np
import PIL.Image
import pytest
import tensorflow as tf

from levit_tf import LevitConfig, LevitForImageClassification
from levit_tf.cli import main

# Two stages on a 32 px input: graphs trace in seconds (tests/training/conftest.py's TINY).
TINY = dict(hidden_sizes=[16, 24], num_attention_heads=[2, 3], depths=[1, 1], key_dim=[8, 8],
            mlp_ratio=[2, 2], attention_ratio=[2, 2], image_size=32, num_labels=4)


def tiny(**overrides) -> LevitForImageClassification:
    keras.utils.set_random_seed(0)
    model = LevitForImageClassification(LevitConfig(**{**TINY, **overrides}))
    model(np.zeros((1, *model.config.image_hw, 3), np.float32))
    return model


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("levit-tf "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hostile")


@pytest.fixture(scope="module")
def keras_file(work) -> Path:
    path = work / "tiny.keras"
    tiny().save(path)
    return path


@pytest.fixture(scope="module")
def tflite_file(work, keras_file) -> Path:
    from levit_tf.tflite import export

    path = work / "tiny.tflite"
    export(keras.saving.load_model(keras_file), path)
    return path


@pytest.fixture(scope="module")
def photos(work) -> Path:
    """Six small RGB PNGs in two class folders."""
    rng = np.random.default_rng(0)
    root = work / "photos"
    for i in range(6):
        folder = root / f"class{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        PIL.Image.fromarray(rng.integers(0, 256, (40, 48, 3), np.uint8)).save(folder / f"{i}.png")
    return root


def names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


# ---------------------------------------------------------------- wrong output, silently
@pytest.mark.parametrize("steps", ["0", "-3"])
def test_int8_with_no_calibration_steps_is_refused(capsys, keras_file, photos, tmp_path, steps):
    code, _, err = run(capsys, "export-tflite", str(keras_file), str(tmp_path / "q.tflite"),
                       "--quantization", "int8", "--calibration-data", str(photos),
                       "--calibration-steps", steps)
    assert_one_line_error(code, err, "at least 1 calibration step", steps)
    assert not list(tmp_path.iterdir())


def test_int8_with_no_calibration_steps_api(keras_file, photos, tmp_path):
    from levit_tf.tflite import export

    for mode in ("int8", "int16x8"):
        with pytest.raises(ValueError, match="at least 1 calibration step"):
            export(keras.saving.load_model(keras_file), tmp_path / "q.tflite", mode,
                   calibration_data=np.zeros((4, 32, 32, 3), np.float32), calibration_steps=0)
    assert not list(tmp_path.iterdir())


def test_verify_flags_a_tflite_of_another_model(capsys, work, keras_file, tflite_file):
    from levit_tf.tflite import export

    other = work / "other.tflite"
    export(tiny(image_size=48, num_labels=3), other)
    code, out, err = run(capsys, "verify", str(keras_file), str(tflite_file), str(other))
    assert_one_line_error(code, err, "other.tflite is not an export of", "input 48x48, model "
                          "32x32", "3 classes, model 4")
    assert "MISMATCH" in out and out.count("MISMATCH") == 1  # tiny.tflite fits


def test_labels_with_line_breaks_are_refused(capsys, tmp_path):
    from levit_tf.tflite import export

    model = tiny(id2label={0: "cat", 1: "hot\ndog", 2: "c", 3: "d"})
    with pytest.raises(ValueError, match=r"label 1 'hot\\ndog' contains a line break"):
        export(model, tmp_path / "m.tflite")
    model.save(tmp_path / "cr.keras")
    code, _, err = run(capsys, "export-tflite", str(tmp_path / "cr.keras"),
                       str(tmp_path / "m.tflite"))
    assert_one_line_error(code, err, "line break")
    assert names(tmp_path) == {"cr.keras"}


def test_non_contiguous_label_ids_are_refused(capsys, tmp_path):
    from levit_tf.export.saved_model import export_saved_model
    from levit_tf.tflite import export

    model = tiny(num_labels=None, id2label={"0": "a", "5": "b"})
    with pytest.raises(ValueError, match=r"every class id 0\.\.1 once; it has ids \[0, 5\]"):
        export(model, tmp_path / "m.tflite")
    with pytest.raises(ValueError, match=r"it has ids \[0, 5\]"):
        export_saved_model(model, tmp_path / "sm")
    model.save(tmp_path / "gap.keras")
    for argv in (["export-tflite", str(tmp_path / "gap.keras"), str(tmp_path / "m.tflite")],
                 ["export-savedmodel", str(tmp_path / "gap.keras"), str(tmp_path / "sm")]):
        code, _, err = run(capsys, *argv)
        assert_one_line_error(code, err, "ids [0, 5]")
    assert names(tmp_path) == {"gap.keras"}  # no .tflite without labels, no folder


@pytest.mark.parametrize("value", ["0", "-1"])
def test_num_labels_must_be_positive(capsys, keras_file, tmp_path, value):
    code, _, err = run(capsys, "convert", str(keras_file), str(tmp_path / "o.keras"),
                       "--num-labels", value, "--ignore-mismatched-sizes")
    assert_one_line_error(code, err, "--num-labels must be at least 1")
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match="num_labels must be >= 0"):
        LevitConfig(num_labels=-1)


@pytest.mark.parametrize("value", ["0", "-3"])
def test_top_k_must_be_positive(capsys, keras_file, photos, tmp_path, value):
    image = str(next(photos.rglob("*.png")))
    code, _, err = run(capsys, "predict", str(keras_file), image, "--top-k", value)
    assert_one_line_error(code, err, "--top-k must be at least 1")
    code, _, err = run(capsys, "export-savedmodel", str(keras_file), str(tmp_path / "s"),
                       "--top-k", value)
    assert_one_line_error(code, err, "--top-k must be at least 1")
    assert not list(tmp_path.iterdir())


def test_unknown_float_op_is_refused(capsys, keras_file, photos, tmp_path):
    code, _, err = run(capsys, "export-tflite", str(keras_file), str(tmp_path / "q.tflite"),
                       "--quantization", "int8", "--calibration-data", str(photos),
                       "--calibration-steps", "2", "--float-ops", "SOFTMAX", "FOO")
    assert_one_line_error(code, err, "unknown float op 'FOO'", "BATCH_MATMUL", "attention")
    code, _, err = run(capsys, "export-tflite", str(keras_file), str(tmp_path / "q.tflite"),
                       "--quantization", "int8", "--calibration-data", str(photos),
                       "--calibration-steps", "2", "--float-ops", "SOFTMAXX")
    assert_one_line_error(code, err, "did you mean SOFTMAX")
    assert not list(tmp_path.iterdir())


def test_finetune_on_one_class_is_refused(capsys, tmp_path):
    folder = tmp_path / "data" / "only"
    folder.mkdir(parents=True)
    for i in range(4):
        PIL.Image.fromarray(np.full((32, 32, 3), 40 * i, np.uint8)).save(folder / f"{i}.png")
    code, _, err = run(capsys, "finetune", "--model", "levit-128S", "--data",
                       str(tmp_path / "data"), "--epochs", "1", "--out", str(tmp_path / "run"))
    assert_one_line_error(code, err, "1 class ('only')", "at least 2 classes")
    assert not (tmp_path / "run").exists()


def _png16(values: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PIL.Image.fromarray(values.astype(np.uint16)).save(buffer, "PNG")
    return buffer.getvalue()


def test_16_bit_grayscale_png_matches_pil_convert_rgb(tmp_path):
    from levit_tf.data import decode_image, scan_image_files
    from levit_tf.preprocessing import LevitImageProcessor

    values = np.array([[0, 1, 100, 254, 255, 256, 300, 1000, 40000, 65535]] * 4)
    data = _png16(values)
    pil = PIL.Image.open(io.BytesIO(data))
    assert pil.mode == "I;16"
    expected = np.asarray(pil.convert("RGB"))
    assert expected[0, :, 0].tolist() == [0, 1, 100, 254, 255, 255, 255, 255, 255, 255]  # PIL
    # in-graph decode (file pipelines, the SavedModel's serve_images)
    np.testing.assert_array_equal(decode_image(tf.constant(data)).numpy(), expected)
    # the file scan keeps it on the TF path, which now agrees
    (tmp_path / "g.png").write_bytes(data)
    files, _ = scan_image_files([tmp_path / "g.png"], on_error="raise")
    decoded = decode_image(tf.constant(files[0].inline or data)).numpy()
    np.testing.assert_array_equal(decoded, expected)
    # PIL images given to the processor: the same pixels as HF's convert("RGB")
    processor = LevitImageProcessor(size={"shortest_edge": 8}, crop_size=8)
    np.testing.assert_array_equal(processor(pil)["pixel_values"],
                                  processor(pil.convert("RGB"))["pixel_values"])


def test_exif_orientation_is_ignored_unless_asked():
    from levit_tf.preprocessing import LevitImageProcessor

    upright = np.zeros((16, 32, 3), np.uint8)
    upright[:, :16] = 255  # left half white
    stored = PIL.Image.fromarray(upright).transpose(PIL.Image.Transpose.ROTATE_90)
    exif = PIL.Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    buffer = io.BytesIO()
    stored.save(buffer, "PNG", exif=exif)
    tagged = PIL.Image.open(io.BytesIO(buffer.getvalue()))
    assert tagged.getexif()[0x0112] == 6 and tagged.size == (16, 32)
    config = dict(size={"height": 16, "width": 32}, do_center_crop=False)
    default = LevitImageProcessor(**config)(tagged)["pixel_values"]
    assert default.shape == (1, 16, 32, 3)  # stretched as stored, like the reference
    reference = LevitImageProcessor(**config)(tagged.convert("RGB"))["pixel_values"]
    np.testing.assert_array_equal(default, reference)
    opted_in = LevitImageProcessor(exif_transpose=True, **config)
    turned = opted_in(tagged)["pixel_values"]
    expected = LevitImageProcessor(**config)(PIL.Image.fromarray(upright))["pixel_values"]
    np.testing.assert_array_equal(turned, expected)
    assert opted_in.to_dict()["exif_transpose"] is True


# ----------------------------------------------------------- outputs other programs can read
def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_published_files_get_umask_modes(capsys, keras_file, tflite_file, tmp_path):
    from levit_tf.converters import convert_to_file
    from levit_tf.export.saved_model import export_saved_model
    from levit_tf.tflite import export

    old = os.umask(0o027)
    try:
        convert_to_file(keras_file, tmp_path / "c.keras")
        export(keras.saving.load_model(keras_file), tmp_path / "m.tflite")
        export_saved_model(keras.saving.load_model(keras_file), tmp_path / "sm")
        json_path = tmp_path / "r.json"
        code, _, err = run(capsys, "verify", str(keras_file), str(tflite_file), "--json",
                           str(json_path))
        assert code == 0, err
    finally:
        os.umask(old)
    for name in ("c.keras", "m.tflite", "m.labels.txt", "r.json"):
        assert _mode(tmp_path / name) == 0o640, (name, oct(_mode(tmp_path / name)))
    for path in [tmp_path / "sm", *(tmp_path / "sm").rglob("*")]:
        assert _mode(path) == (0o750 if path.is_dir() else 0o640), (path, oct(_mode(path)))
    # (the same SavedModel, reused) an empty batch is refused by name in both signatures
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"empty batch \(0 images\)"):
        loaded.signatures["serving_default"](pixel_values=tf.zeros((0, 32, 32, 3)))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"empty batch \(0 images\)"):
        loaded.signatures["serve_images"](images=tf.zeros((0,), tf.string))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


# -------------------------------------------------------------- tracebacks -> one line
def test_output_inside_a_file_fails_before_the_work(capsys, keras_file, tflite_file, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    cases = [
        (["convert", str(keras_file), str(blocker / "o.keras")], "file.txt"),
        (["export-savedmodel", str(keras_file), str(blocker / "sm")], "not a directory"),
        (["export-savedmodel", str(keras_file), str(blocker)], "not a directory"),
        (["verify", str(keras_file), str(tflite_file), "--json", str(blocker / "r.json")],
         "--json"),
        (["verify", str(keras_file), str(tflite_file), "--json",
          str(tmp_path / "missing" / "r.json")], "does not exist"),
        (["finetune", "--model", "levit-128S", "--data", "digits", "--epochs", "1",
          "--out", str(blocker / "run")], "--out"),
    ]
    for argv, needle in cases:
        code, out, err = run(capsys, *argv)
        assert_one_line_error(code, err, needle)
        assert "size MB" not in out  # failed before the benchmark
    assert names(tmp_path) == {"file.txt"}


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")
def test_permission_denied_is_one_line(keras_file):
    """A real PermissionError: user nobody converting into a root-owned 0755 folder."""
    locked = Path(tempfile.mkdtemp(prefix="levit-locked-", dir="/tmp"))
    try:
        os.chmod(locked, 0o755)
        script = "import sys; from levit_tf.cli import main; sys.exit(main(sys.argv[1:]))"
        try:
            result = subprocess.run(
                [sys.executable, "-c", script, "convert", str(keras_file),
                 str(locked / "o.keras")], capture_output=True, text=True, timeout=300,
                user=65534, env={**os.environ, "HOME": "/tmp"})
        except PermissionError:
            pytest.skip("user nobody cannot run this Python")
        if "Traceback" in result.stderr and "levit_tf/utils/files.py" not in result.stderr and (
                "Permission denied" in result.stderr):
            pytest.skip("user nobody cannot read this checkout")
        assert result.returncode == 1, result.stderr[-2000:]
        assert "Traceback" not in result.stderr and "cannot write" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert not list(locked.iterdir())
    finally:
        shutil.rmtree(locked)


def test_concurrent_savedmodel_loser_is_told(monkeypatch, keras_file, tmp_path):
    """The other writer publishes OUTDIR while this one is writing (after the up-front
    check): the loser names it, and its staging folder is gone."""
    from levit_tf.export import saved_model as serving

    real_save = tf.saved_model.save
    target = tmp_path / "sm"

    def save_then_lose_the_race(*args, **kwargs):
        real_save(*args, **kwargs)
        target.mkdir()
        (target / "saved_model.pb").write_bytes(b"the other writer's")

    monkeypatch.setattr(serving.tf.saved_model, "save", save_then_lose_the_race)
    with pytest.raises(FileExistsError, match="another writer published it first"):
        serving.export_saved_model(keras.saving.load_model(keras_file), target)
    assert names(tmp_path) == {"sm"} and names(target) == {"saved_model.pb"}


def test_interrupt_during_start_up(capsys, monkeypatch):
    """Ctrl-C while ``main`` imports TensorFlow (its start-up import)."""
    from levit_tf.cli import app

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(app, "import_tensorflow_quietly", interrupted)
    code, _, err = run(capsys, "info", "x.keras")
    assert code == 130 and err.strip() == "levit-tf: interrupted"


def test_api_integer_pixels_and_empty_batches(tflite_file):
    from levit_tf.tflite import TFLiteModel

    model = tiny()
    raw = np.zeros((2, 32, 32, 3), np.uint8)
    for call in (lambda: model(raw), lambda: model.predict(raw, verbose=0)):
        with pytest.raises(TypeError, match=r"takes float pixel_values.*got dtype uint8"):
            call()
    empty = np.zeros((0, 32, 32, 3), np.float32)
    for call in (lambda: model(empty), lambda: model.predict(empty, verbose=0),
                 lambda: TFLiteModel(tflite_file)(empty)):
        with pytest.raises(ValueError, match=r"empty batch \(0 images\)"):
            call()


# ------------------------------------------------------------------ misleading messages
def test_hub_offline_and_preset_typos(monkeypatch, tmp_path):
    import huggingface_hub.constants

    from levit_tf.models.levit.hub import hub_download

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError) as caught:
        hub_download("levit-999", "config.json")
    message = str(caught.value)
    assert "not in the local cache" in message and "has no file" not in message
    assert "did you mean levit-192" in message
    with pytest.raises(FileNotFoundError) as caught:
        hub_download("facebook/levit-128S", "config.json")
    assert "did you mean" not in str(caught.value)  # a right name gets no suggestion


def test_unsafe_pickle_never_suggests_weights_only_false(tmp_path):
    import torch

    from levit_tf.converters import ConversionError, load_pretrained

    class Payload:
        def __reduce__(self):
            return (print, ("ran code",))

    torch.save({"w": Payload()}, tmp_path / "evil.pth")
    with pytest.raises(ConversionError) as caught:
        load_pretrained(tmp_path / "evil.pth")
    message = str(caught.value)
    assert "refused" in message and "print" in message and "\n" not in message
    assert "weights_only" not in message and "likely succeed" not in message


def test_report_images_checked_before_the_export(capsys, keras_file, tmp_path):
    code, _, err = run(capsys, "export-tflite", str(keras_file), str(tmp_path / "m.tflite"),
                       "--report", "--images", str(tmp_path / "nope"))
    assert_one_line_error(code, err, "--images", "no such folder")
    assert "calibration" not in err and not list(tmp_path.iterdir())


def test_too_few_calibration_images_fail_before_conversion(capsys, monkeypatch, keras_file,
                                                           photos, tmp_path):
    export_module = importlib.import_module("levit_tf.tflite.exporter")

    def no_conversion_work(*args, **kwargs):
        raise AssertionError("the model was folded before the image count was checked")

    monkeypatch.setattr(export_module, "_inference_model", no_conversion_work)
    code, _, err = run(capsys, "export-tflite", str(keras_file), str(tmp_path / "q.tflite"),
                       "--quantization", "int8", "--calibration-data", str(photos),
                       "--calibration-steps", "50")
    assert_one_line_error(code, err, "has 6 images, --calibration-steps asks for 50")
    assert not list(tmp_path.iterdir())


def test_failed_finetune_leaves_no_out_folder(capsys, photos, tmp_path):
    code, _, err = run(capsys, "finetune", "--model", str(tmp_path / "missing.keras"),
                       "--data", str(photos), "--epochs", "1", "--out", str(tmp_path / "run"))
    assert_one_line_error(code, err, "missing.keras")
    assert not (tmp_path / "run").exists()


def test_interrupted_checkpoint_save_leaves_no_temporary(monkeypatch, tmp_path):
    from levit_tf.training.run_dir import RunDirectory

    run_dir = RunDirectory(tmp_path)
    model = tiny()

    def save_then_interrupt(path, *args, **kwargs):
        Path(path).write_bytes(b"half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(model, "save", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_dir.save_model(model, run_dir.best)
    assert not list(tmp_path.iterdir())  # no .best.tmp.keras, no best.keras


def test_labels_policy_is_documented():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "EXIF orientation" in readme and "line break" in readme
    assert "umask" in readme
