"""Fuzz-style contract test of every CLI verb (issue 15).

Generated bad values (paths, numbers, label maps, image bytes, checkpoint bytes) go through
``levit_tf.cli.app`` in-process, a few through a real subprocess. Every case must end with

* exit 0 and correct output (the files the verb promises, nothing else), or
* exit 1 and exactly one line on stderr, ``levit-tf VERB: error: ...``, or
* exit 2 for values argparse itself rejects (its usage text, then one ``error:`` line),

and never a traceback, a file left behind (output folders are compared before and after), or a
case slower than ``CASE_SECONDS``. The inputs are generated from a fixed seed.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import struct
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import PIL.Image
import pytest

from levit_tf import LevitConfig, LevitForImageClassification
from levit_tf.cli import main

CASE_SECONDS = 60
TINY = dict(hidden_sizes=[16, 24], num_attention_heads=[2, 3], depths=[1, 1], key_dim=[8, 8],
            mlp_ratio=[2, 2], attention_ratio=[2, 2], image_size=32, num_labels=4)
VERBS = ("convert", "info", "predict", "export-savedmodel", "export-tflite", "verify",
         "finetune")


# ----------------------------------------------------------------------------- inputs
def tiny_model(**overrides) -> LevitForImageClassification:
    keras.utils.set_random_seed(0)
    model = LevitForImageClassification(LevitConfig(**{**TINY, **overrides}))
    model(np.zeros((1, 32, 32, 3), np.float32))
    return model


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PIL.Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def jpeg(array: np.ndarray, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    PIL.Image.fromarray(array).convert(mode).save(buffer, "JPEG")
    return buffer.getvalue()


def huge_png_header() -> bytes:
    """A valid PNG signature and IHDR claiming 100000 x 100000 pixels (a decompression bomb)."""
    import zlib

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk
            + struct.pack(">I", zlib.crc32(chunk)) + b"\0" * 64)


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """Every generated input file, by name, in one read-only-by-convention folder."""
    rng = np.random.default_rng(15)
    root = tmp_path_factory.mktemp("fuzz_inputs")
    files: dict[str, Path] = {}

    def put(name: str, data: bytes) -> None:
        files[name] = root / name
        files[name].write_bytes(data)

    model = tiny_model()
    model.save(root / "tiny.keras")
    files["tiny.keras"] = root / "tiny.keras"
    from levit_tf.tflite import export

    export(model, root / "tiny.tflite")
    files["tiny.tflite"] = root / "tiny.tflite"
    keras_bytes = files["tiny.keras"].read_bytes()
    tflite_bytes = files["tiny.tflite"].read_bytes()
    # checkpoint / model bytes
    put("random.pth", rng.bytes(4096))
    put("random.safetensors", rng.bytes(4096))
    put("random.keras", rng.bytes(4096))
    put("random.tflite", rng.bytes(4096))
    put("empty.pth", b"")
    put("empty.keras", b"")
    put("empty.tflite", b"")
    put("text.keras", b"not a model\n")
    put("half.keras", keras_bytes[: len(keras_bytes) // 2])
    put("half.tflite", tflite_bytes[: len(tflite_bytes) // 2])
    put("zip-garbage.pth", b"PK\x03\x04" + rng.bytes(2000))
    put("huge-header.safetensors", struct.pack("<Q", 2**40) + b"{" + rng.bytes(100))
    put("bad-json.safetensors", struct.pack("<Q", 12) + b"{not json!!}")
    import torch

    torch.save({"w": _Payload()}, root / "evil.pth")  # would run a shell command if unpickled
    files["evil.pth"] = root / "evil.pth"
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("config.json", "{}")
    put("not-levit.keras", zipped.getvalue())
    (root / "unicode módel ☃.keras").write_bytes(keras_bytes)
    files["unicode.keras"] = root / "unicode módel ☃.keras"
    (root / "a-folder.keras").mkdir()
    files["folder.keras"] = root / "a-folder.keras"
    # image bytes
    photo = rng.integers(0, 256, (40, 56, 3), np.uint8)
    images = root / "images"
    images.mkdir()
    for name, data in {
        "ok.png": png(photo), "ok.jpg": jpeg(photo), "cmyk.jpg": jpeg(photo, "CMYK"),
        "gray16.png": png(photo[..., 0].astype(np.uint16) * 300),
        "one-pixel.png": png(photo[:1, :1]), "random.png": rng.bytes(3000),
        "zero.jpg": b"", "truncated.png": png(photo)[:200],
        "truncated.jpg": jpeg(photo)[:300], "text.png": b"hello\n",
        "bomb.png": huge_png_header(),
    }.items():
        (images / name).write_bytes(data)
        files[f"image:{name}"] = images / name
    # calibration / held-out folders
    good = root / "good-images" / "a"
    good.mkdir(parents=True)
    for i in range(3):
        (good / f"{i}.png").write_bytes(png(rng.integers(0, 256, (36, 36, 3), np.uint8)))
    files["good-images"] = root / "good-images"
    bad = root / "bad-images"
    bad.mkdir()
    for i in range(3):
        (bad / f"{i}.png").write_bytes(rng.bytes(500))
    files["bad-images"] = bad
    files["no-images"] = root / "a-folder.keras"  # an empty folder
    # data for finetune: one class, and classes of corrupt files only
    one = root / "one-class" / "cat"
    one.mkdir(parents=True)
    for i in range(3):
        (one / f"{i}.png").write_bytes(png(photo))
    files["one-class"] = root / "one-class"
    junk = root / "junk-classes"
    for label in ("a", "b"):
        (junk / label).mkdir(parents=True)
        (junk / label / "x.png").write_bytes(rng.bytes(300))
    files["junk-classes"] = junk
    # label maps
    for name, id2label in {
        "gap": {"0": "a", "5": "b"}, "newline": {0: "a", 1: "b\nc"},
        "cr": {0: "a\rb", 1: "c"}, "separator": {0: "a", 1: "b\u2028c"},
        "unicode": {0: "chat ☃", 1: "tab\tlabel", 2: "", 3: "x" * 2000},
    }.items():
        tiny_model(num_labels=None, id2label=id2label).save(root / f"labels-{name}.keras")
        files[f"labels-{name}"] = root / f"labels-{name}.keras"
    files["root"] = root
    return files


# ------------------------------------------------------------------------------ cases
@dataclass
class Case:
    id: str
    argv: Callable[[dict[str, Path], Path], list[str]]  # (inputs, output folder) -> argv
    outputs: tuple[str, ...] = ()  # what exit 0 leaves in the output folder
    check: Callable[[str, Path], None] | None = None  # (stdout, output folder) on exit 0
    must_fail: str = ""  # text the one-line error must hold ("" = exit 0 also fine)
    extra: dict = field(default_factory=dict)


def _predict_ok(top: int) -> Callable[[str, Path], None]:
    def check(stdout: str, _: Path) -> None:
        ranks = re.findall(r"^\s+(\d+)\. .+  (\d\.\d{4})$", stdout, re.M)
        assert len(ranks) == top, stdout
        assert abs(sum(float(p) for _, p in ranks) - 1.0) < 0.01 or top < 4
    return check


def _labels_ok(expected: list[str]) -> Callable[[str, Path], None]:
    def check(stdout: str, out: Path) -> None:
        text = (out / "m.labels.txt").read_text()
        assert text.split("\n")[:-1] == expected and text.endswith("\n")
        assert "wrote" in stdout
    return check


BAD_MODEL_FILES = ("random.pth", "random.safetensors", "random.keras", "random.tflite",
                   "empty.pth", "empty.keras", "empty.tflite", "text.keras", "half.keras",
                   "half.tflite", "zip-garbage.pth", "huge-header.safetensors",
                   "bad-json.safetensors", "evil.pth", "not-levit.keras", "folder.keras")
MISSING = "/nonexistent/dir/model.keras"


def model_cases() -> list[Case]:
    cases = []
    for name in (*BAD_MODEL_FILES, "missing"):
        def src(f, _o, name=name):
            return MISSING if name == "missing" else str(f[name])
        cases += [
            Case(f"convert-source-{name}", lambda f, o, s=src: [
                "convert", s(f, o), str(o / "o.keras")], must_fail=" "),
            Case(f"info-{name}", lambda f, o, s=src: ["info", s(f, o)], must_fail=" "),
            Case(f"predict-model-{name}", lambda f, o, s=src: [
                "predict", s(f, o), str(f["image:ok.png"])], must_fail=" "),
            Case(f"savedmodel-model-{name}", lambda f, o, s=src: [
                "export-savedmodel", s(f, o), str(o / "sm")], must_fail=" "),
            Case(f"tflite-model-{name}", lambda f, o, s=src: [
                "export-tflite", s(f, o), str(o / "m.tflite")], must_fail=" "),
            Case(f"verify-tflite-{name}", lambda f, o, s=src: [
                "verify", str(f["tiny.keras"]), s(f, o)], must_fail=" "),
        ]
    cases += [
        Case("info-unicode-path", lambda f, o: ["info", str(f["unicode.keras"])],
             check=lambda out, _: "4 (LABEL_0" in out),
        Case("convert-unicode-path", lambda f, o: ["convert", str(f["unicode.keras"]),
                                                   str(o / "é ☃.keras")],
             outputs=("é ☃.keras",)),
        Case("convert-empty-source", lambda f, o: ["convert", "", str(o / "o.keras")],
             must_fail=" "),
        Case("convert-preset-typo", lambda f, o: ["convert", "/levit-999", str(o / "o.keras")],
             must_fail="levit-999"),
        Case("convert-output-not-keras", lambda f, o: ["convert", str(f["tiny.keras"]),
                                                       str(o / "o.h5")], must_fail=".keras"),
        Case("convert-output-is-folder", lambda f, o: ["convert", str(f["tiny.keras"]),
                                                       str(f["folder.keras"])],
             must_fail="directory"),
        Case("convert-output-missing-dir", lambda f, o: ["convert", str(f["tiny.keras"]),
                                                         str(o / "no" / "o.keras")],
             must_fail="does not exist"),
    ]
    return cases


def number_cases() -> list[Case]:
    def predict(top):
        return lambda f, o: ["predict", str(f["tiny.keras"]), str(f["image:ok.png"]),
                             "--top-k", top]
    cases = [Case(f"predict-top-k={v}", predict(v), must_fail="--top-k")
             for v in ("0", "-1", "-1000000000")]
    cases.append(Case("predict-top-k=huge", predict("1000000000"), check=_predict_ok(4)))
    cases += [Case(f"savedmodel-top-k={v}", lambda f, o, v=v: [
        "export-savedmodel", str(f["tiny.keras"]), str(o / "sm"), "--top-k", v],
        must_fail="--top-k") for v in ("0", "-7")]
    cases += [Case(f"convert-num-labels={v}", lambda f, o, v=v: [
        "convert", str(f["tiny.keras"]), str(o / "o.keras"), "--num-labels", v],
        must_fail="--num-labels") for v in ("0", "-1")]
    for v in ("0", "-1", "1000000"):
        for mode in ("int8", "int16x8"):
            cases.append(Case(f"tflite-{mode}-calibration-steps={v}", lambda f, o, v=v, m=mode: [
                "export-tflite", str(f["tiny.keras"]), str(o / "m.tflite"), "--quantization", m,
                "--calibration-data", str(f["good-images"]), "--calibration-steps", v],
                must_fail="calibration"))
    cases += [Case(f"tflite-count={v}", lambda f, o, v=v: [
        "export-tflite", str(f["tiny.keras"]), str(o / "m.tflite"), "--report", "--count", v],
        must_fail="--count") for v in ("0", "-3")]
    cases += [Case(f"verify-count={v}", lambda f, o, v=v: [
        "verify", str(f["tiny.keras"]), str(f["tiny.tflite"]), "--count", v],
        must_fail="--count") for v in ("0", "-3")]
    finetune_bad = {"--epochs": ("0", "-1"), "--batch-size": ("0", "-64"),
                    "--lr": ("0", "-0.1", "nan"), "--val-fraction": ("0", "1", "1.5"),
                    "--label-smoothing": ("1", "-0.5"), "--warmup-epochs": ("-1",),
                    "--drop-path": ("1", "-0.1"), "--weight-decay": ("-1",)}
    for flag, values in finetune_bad.items():
        for v in values:
            def argv(f, o, flag=flag, v=v):
                base = {"--epochs": "1", "--batch-size": "8"}
                base[flag] = v
                extra = [x for k, val in base.items() for x in (k, val)]
                return ["finetune", "--model", "levit-128S", "--data", str(f["one-class"]),
                        "--out", str(o / "run"), *extra]
            cases.append(Case(f"finetune{flag}={v}", argv, must_fail=" "))
    for v in ("0", "15", "-16", "abc", "16x", "99999999999"):
        cases.append(Case(f"convert-image-size={v}", lambda f, o, v=v: [
            "convert", str(f["tiny.keras"]), str(o / "o.keras"), "--image-size", v],
            must_fail=" "))
    for flag, value in (("--top-k", "x"), ("--top-k", "1.5")):
        cases.append(Case(f"predict{flag}={value}", lambda f, o, flag=flag, value=value: [
            "predict", str(f["tiny.keras"]), str(f["image:ok.png"]), flag, value],
            must_fail=" "))
    return cases


def path_cases() -> list[Case]:
    def blocker(o: Path) -> Path:
        path = o / "a-file"
        path.write_text("x")
        return path
    return [
        Case("savedmodel-outdir-is-file", lambda f, o: [
            "export-savedmodel", str(f["tiny.keras"]), str(blocker(o))],
            outputs=("a-file",), must_fail="not a directory"),
        Case("savedmodel-outdir-inside-file", lambda f, o: [
            "export-savedmodel", str(f["tiny.keras"]), str(blocker(o) / "sm")],
            outputs=("a-file",), must_fail="not a directory"),
        Case("savedmodel-outdir-not-empty", lambda f, o: [
            "export-savedmodel", str(f["tiny.keras"]), str(o)], outputs=(),
            must_fail="not empty", extra={"pre": lambda o: blocker(o)}),
        Case("tflite-output-not-tflite", lambda f, o: [
            "export-tflite", str(f["tiny.keras"]), str(o / "m.bin")], must_fail=".tflite"),
        Case("tflite-output-inside-file", lambda f, o: [
            "export-tflite", str(f["tiny.keras"]), str(blocker(o) / "m.tflite")],
            outputs=("a-file",), must_fail="a-file"),
        Case("tflite-report-images-missing", lambda f, o: [
            "export-tflite", str(f["tiny.keras"]), str(o / "m.tflite"), "--report", "--images",
            str(o / "nope")], must_fail="--images"),
        Case("tflite-report-images-a-file", lambda f, o: [
            "export-tflite", str(f["tiny.keras"]), str(o / "m.tflite"), "--report", "--images",
            str(f["image:ok.png"])], must_fail="--images"),
        Case("tflite-report-images-corrupt", lambda f, o: [
            "export-tflite", str(f["tiny.keras"]), str(o / "m.tflite"), "--report", "--images",
            str(f["bad-images"])], must_fail="--images"),
        Case("tflite-report-images-empty-folder", lambda f, o: [
            "export-tflite", str(f["tiny.keras"]), str(o / "m.tflite"), "--report", "--images",
            str(f["no-images"])], must_fail="--images"),
        Case("tflite-int8-no-calibration", lambda f, o: [
            "export-tflite", str(f["tiny.keras"]), str(o / "m.tflite"), "--quantization",
            "int8"], must_fail="calibration"),
        Case("tflite-int8-calibration-missing", lambda f, o: [
            "export-tflite", str(f["tiny.keras"]), str(o / "m.tflite"), "--quantization",
            "int8", "--calibration-data", str(o / "nope"), "--calibration-steps", "2"],
            must_fail="no such folder"),
        Case("tflite-int8-calibration-corrupt", lambda f, o: [
            "export-tflite", str(f["tiny.keras"]), str(o / "m.tflite"), "--quantization",
            "int8", "--calibration-data", str(f["bad-images"]), "--calibration-steps", "2"],
            must_fail="bad-images"),
        Case("tflite-float-ops-unknown", lambda f, o: [
            "export-tflite", str(f["tiny.keras"]), str(o / "m.tflite"), "--quantization",
            "int8", "--calibration-data", str(f["good-images"]), "--calibration-steps", "2",
            "--float-ops", "attention", "NOT_AN_OP"], must_fail="NOT_AN_OP"),
        Case("tflite-float-ops-none-and-names", lambda f, o: [
            "export-tflite", str(f["tiny.keras"]), str(o / "m.tflite"), "--quantization",
            "int8", "--calibration-data", str(f["good-images"]), "--calibration-steps", "2",
            "--float-ops", "none", "SOFTMAX"], must_fail="--float-ops none"),
        Case("tflite-float-ops-not-int8", lambda f, o: [
            "export-tflite", str(f["tiny.keras"]), str(o / "m.tflite"), "--float-ops",
            "SOFTMAX"], must_fail="int8"),
        Case("tflite-gptq-float-mode", lambda f, o: [
            "export-tflite", str(f["tiny.keras"]), str(o / "m.tflite"), "--quantization",
            "float16", "--weight-rounding", "gptq"], must_fail="int8 weights"),
        Case("tflite-gptq-no-calibration", lambda f, o: [
            "export-tflite", str(f["tiny.keras"]), str(o / "m.tflite"), "--quantization",
            "dynamic", "--weight-rounding", "gptq"], must_fail="calibration_data"),
        Case("tflite-gptq-unknown-rounding", lambda f, o: [
            "export-tflite", str(f["tiny.keras"]), str(o / "m.tflite"), "--quantization",
            "int8", "--weight-rounding", "adaround"], must_fail="adaround"),
        Case("tflite-gptq-calibration-corrupt", lambda f, o: [
            "export-tflite", str(f["tiny.keras"]), str(o / "m.tflite"), "--quantization",
            "dynamic", "--weight-rounding", "gptq", "--calibration-data", str(f["bad-images"]),
            "--calibration-steps", "2"], must_fail="bad-images"),
        Case("tflite-gptq-int8", lambda f, o: [
            "export-tflite", str(f["tiny.keras"]), str(o / "m.tflite"), "--quantization",
            "int8", "--weight-rounding", "gptq", "--calibration-data", str(f["good-images"])],
            outputs=("m.tflite", "m.labels.txt"),
            check=lambda out, o: "GPTQ weights: " in out and "round-to-nearest's" in out),
        Case("verify-json-missing-dir", lambda f, o: [
            "verify", str(f["tiny.keras"]), str(f["tiny.tflite"]), "--json",
            str(o / "no" / "r.json")], must_fail="--json"),
        Case("verify-json-is-folder", lambda f, o: [
            "verify", str(f["tiny.keras"]), str(f["tiny.tflite"]), "--json", str(o)],
            must_fail="--json"),
        Case("verify-images-missing", lambda f, o: [
            "verify", str(f["tiny.keras"]), str(f["tiny.tflite"]), "--images", str(o / "x")],
            must_fail="--images"),
        Case("verify-json-ok", lambda f, o: [
            "verify", str(f["tiny.keras"]), str(f["tiny.tflite"]), "--json", str(o / "r.json"),
            "--images", str(f["good-images"]), "--count", "2"], outputs=("r.json",),
            check=lambda out, o: "100.00%" in out and '"top1_agreement": 1.0' in (
                o / "r.json").read_text()),
        Case("verify-other-model-with-json", lambda f, o: [
            "verify", str(f["labels-gap"]), str(f["tiny.tflite"]), "--json", str(o / "r.json")],
            must_fail="not an export of"),
        Case("finetune-data-missing", lambda f, o: [
            "finetune", "--model", "levit-128S", "--data", str(o / "nope"), "--epochs", "1",
            "--out", str(o / "run")], must_fail="--data"),
        Case("finetune-data-one-class", lambda f, o: [
            "finetune", "--model", "levit-128S", "--data", str(f["one-class"]), "--epochs", "1",
            "--out", str(o / "run")], must_fail="at least 2 classes"),
        Case("finetune-data-all-corrupt", lambda f, o: [
            "finetune", "--model", "levit-128S", "--data", str(f["junk-classes"]),
            "--epochs", "1", "--image-size", "32", "--out", str(o / "run")],
            must_fail="no readable images"),
        Case("finetune-model-missing", lambda f, o: [
            "finetune", "--model", str(o / "nope.keras"), "--data", str(f["junk-classes"]),
            "--epochs", "1", "--out", str(o / "run")], must_fail="nope.keras"),
        Case("finetune-out-is-file", lambda f, o: [
            "finetune", "--model", "levit-128S", "--data", "digits", "--epochs", "1",
            "--out", str(blocker(o))], outputs=("a-file",), must_fail="not a directory"),
    ]


def image_cases() -> list[Case]:
    ok = {"ok.png", "ok.jpg", "cmyk.jpg", "gray16.png", "one-pixel.png"}
    names = ("ok.png", "ok.jpg", "cmyk.jpg", "gray16.png", "one-pixel.png", "random.png",
             "zero.jpg", "truncated.png", "truncated.jpg", "text.png", "bomb.png")
    cases = [Case(f"predict-image-{n}", lambda f, o, n=n: [
        "predict", str(f["tiny.keras"]), str(f[f"image:{n}"]), "--top-k", "3"],
        check=_predict_ok(3), must_fail="" if n in ok else n) for n in names]
    cases += [
        Case("predict-image-missing", lambda f, o: ["predict", str(f["tiny.keras"]),
                                                    str(o / "no.png")], must_fail="no.png"),
        Case("predict-image-folder", lambda f, o: ["predict", str(f["tiny.keras"]), str(o)],
             must_fail=" "),
        Case("predict-tflite-image-ok", lambda f, o: [
            "predict", str(f["tiny.tflite"]), str(f["image:gray16.png"]), "--top-k", "2"],
            check=_predict_ok(2)),
        Case("predict-tflite-image-bad", lambda f, o: [
            "predict", str(f["tiny.tflite"]), str(f["image:random.png"])],
            must_fail="random.png"),
    ]
    return cases


def label_cases() -> list[Case]:
    cases = []
    for name, needle in (("gap", "ids [0, 5]"), ("newline", "line break"), ("cr", "line break"),
                         ("separator", "line break")):
        cases.append(Case(f"tflite-labels-{name}", lambda f, o, n=name: [
            "export-tflite", str(f[f"labels-{n}"]), str(o / "m.tflite")], must_fail=needle))
    cases.append(Case("savedmodel-labels-gap", lambda f, o: [
        "export-savedmodel", str(f["labels-gap"]), str(o / "sm")], must_fail="ids [0, 5]"))
    cases.append(Case("tflite-labels-unicode", lambda f, o: [
        "export-tflite", str(f["labels-unicode"]), str(o / "m.tflite")],
        outputs=("m.tflite", "m.labels.txt"),
        check=_labels_ok(["chat ☃", "tab\tlabel", "", "x" * 2000])))
    return cases


CASES = [*model_cases(), *number_cases(), *path_cases(), *image_cases(), *label_cases()]


# --------------------------------------------------------------------------- the contract
def visible_lines(stderr: str) -> list[str]:
    """What a terminal keeps: progress bars (text ended by a carriage return, then cleared)
    dropped, blank lines dropped."""
    kept = []
    for line in stderr.split("\n"):
        line = line.rsplit("\r", 1)[-1]
        if line.strip():
            kept.append(line)
    return kept


def snapshot(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_contract(case: Case, inputs, tmp_path, capsys):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    argv = case.argv(inputs, out_dir)
    if "pre" in case.extra:
        case.extra["pre"](out_dir)
    before_inputs = snapshot(inputs["root"])
    before = snapshot(out_dir)
    verb = argv[0]
    start = time.perf_counter()
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse
        code = exit_.code
    seconds = time.perf_counter() - start
    stdout, stderr = capsys.readouterr()
    lines = visible_lines(stderr)
    assert "Traceback" not in stderr, stderr
    assert seconds < CASE_SECONDS, f"{case.id} took {seconds:.0f} s"
    assert snapshot(inputs["root"]) == before_inputs, "an input folder changed"
    left = snapshot(out_dir) - before
    if code == 2:  # argparse: usage lines, then one error line
        assert lines and lines[-1].startswith(f"levit-tf {verb}: error: "), stderr
        assert case.must_fail, f"{case.id}: argparse refused a value meant to work: {stderr}"
        assert not left
        return
    if code == 1:
        assert len(lines) == 1, f"{case.id}: stderr is not one line:\n{stderr}"
        assert lines[0].startswith(f"levit-tf {verb}: error: "), lines[0]
        assert case.must_fail, f"{case.id} should have worked: {lines[0]}"
        assert case.must_fail.strip() == "" or case.must_fail in lines[0], (case.must_fail,
                                                                            lines[0])
        assert not left, f"{case.id} failed but left {sorted(left)}"
        return
    assert code == 0, f"{case.id}: exit {code}\n{stderr}"
    assert not case.must_fail or not case.must_fail.strip(), (
        f"{case.id} should have failed naming {case.must_fail!r}; stdout:\n{stdout}")
    assert left == set(case.outputs) - before, f"{case.id}: left {sorted(left)}"
    if case.check:
        case.check(stdout, out_dir)


def test_case_count():
    """The closing note quotes this number; every verb is covered."""
    assert len(CASES) >= 150
    verbs = set()
    dummy = {k: Path(f"/x/{k}") for k in (
        "tiny.keras", "tiny.tflite", "image:ok.png", "good-images", "one-class", "root")}

    class Anything(dict):
        def __missing__(self, key):
            return Path(f"/x/{key}")

    for case in CASES:
        with contextlib.suppress(OSError):  # cases that write a blocker file first
            verbs.add(case.argv(Anything(dummy), Path("/x/out"))[0])
    assert verbs == set(VERBS), verbs


# ------------------------------------------------------------------ real processes
def cli(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "levit_tf.cli", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, **kwargs)


def test_subprocess_errors_are_one_line(inputs, tmp_path):
    """Through a real process (what users see, warnings and TF logging included)."""
    process = cli("convert", str(inputs["evil.pth"]), str(tmp_path / "o.keras"))
    _, stderr = process.communicate(timeout=300)
    lines = visible_lines(stderr)
    assert process.returncode == 1 and "Traceback" not in stderr, stderr
    assert len(lines) == 1 and "refused" in lines[0] and "pwned" not in stderr, stderr
    assert "system" in lines[0] and "weights_only" not in lines[0]  # names the global
    assert not list(tmp_path.iterdir())


def test_sigint_exits_130_with_one_line(inputs, tmp_path):
    """Ctrl-C (a real SIGINT) once ``main`` runs: 'interrupted', exit 130, nothing written.
    The package is imported first: an interrupt inside ``import levit_tf`` itself happens
    before any code of the CLI can catch it. 'ready' is printed from inside ``main`` (its
    first call, ``build_parser``): printed before the call, a loaded machine could deliver
    the signal between the print and ``main``'s ``try``. SIGINT starts as a terminal leaves it
    (Python's handler), also when pytest runs as a background job, which inherits it ignored."""
    script = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
              "import levit_tf.cli.app as cli; build = cli.build_parser; "
              "cli.build_parser = lambda: (print('ready', flush=True), build())[1]; "
              "sys.exit(cli.main(sys.argv[1:]))")
    process = subprocess.Popen(
        [sys.executable, "-c", script, "export-savedmodel", str(inputs["tiny.keras"]),
         str(tmp_path / "sm")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert process.stdout.readline().strip() == "ready"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert visible_lines(stderr)[-1:] == ["levit-tf: interrupted"], stderr
    assert "Traceback" not in stderr
    assert not list(tmp_path.iterdir())
