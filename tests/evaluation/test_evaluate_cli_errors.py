"""``levit-tf evaluate``'s fast checks: --help and bad input answer without importing TensorFlow,
each bad input in one line naming the problem (exit 1), and nothing is written."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest


def run_main(argv: list[str]) -> subprocess.CompletedProcess:
    """``levit_tf.cli.main(argv)`` in a fresh process; prints whether TensorFlow got imported."""
    code = ("import sys\nfrom levit_tf.cli import main\n"
            f"try:\n    code = main({argv!r})\nexcept SystemExit as exit:\n    code = exit.code\n"
            "print('exit', code, 'TF', 'tensorflow' in sys.modules)\n")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=env)


@pytest.fixture
def folders(tmp_path) -> dict[str, Path]:
    empty = tmp_path / "empty"
    empty.mkdir()
    one_empty_class = tmp_path / "one_empty_class"
    (one_empty_class / "cat").mkdir(parents=True)
    (one_empty_class / "cat" / "a.png").write_bytes(b"x")
    (one_empty_class / "dog").mkdir()
    (one_empty_class / "dog" / ".hidden.png").write_bytes(b"x")
    model = tmp_path / "m.tflite"
    model.write_bytes(b"x")
    return {"empty": empty, "one_empty_class": one_empty_class, "model": model,
            "tmp": tmp_path}


def test_help_imports_no_tensorflow():
    start = time.perf_counter()
    done = run_main(["evaluate", "--help"])
    assert done.stdout.strip().endswith("exit 0 TF False")
    assert "--data DATA" in done.stdout and "tfds:NAME[:SPLIT]" in done.stdout
    assert time.perf_counter() - start < 10  # ~0.2 s idle


@pytest.mark.parametrize("case, message", [
    (lambda f: [str(f["model"]), "--data", str(f["empty"])],
     "--data {empty}: no class subfolders in {empty} (expected DIR/<class>/<image>)"),
    (lambda f: [str(f["model"]), "--data", str(f["one_empty_class"])],
     "--data {one_empty_class}: class folder {one_empty_class}/dog holds no files"),
    (lambda f: [str(f["model"]), "--data", str(f["tmp"] / "nowhere")],
     "--data {tmp}/nowhere: no such folder"),
    (lambda f: [str(f["tmp"] / "missing.tflite"), "--data", str(f["empty"])],
     "{tmp}/missing.tflite: no such file"),
    (lambda f: [str(f["tmp"]), "--data", "digits"],
     "{tmp}: a folder with neither saved_model.pb (a SavedModel) nor config.json"),
    (lambda f: [str(f["model"]), "--data", "digits", "--plot", str(f["tmp"] / "p.txt")],
     "--plot {tmp}/p.txt: the file name must end in .png, .svg, .pdf"),
    (lambda f: [str(f["model"]), "--data", "digits", "--json", str(f["tmp"] / "no" / "e.json")],
     "--json {tmp}/no/e.json: directory {tmp}/no does not exist"),
    (lambda f: [str(f["model"]), "--data", "digits", "--threads", "0"],
     "--threads must be an integer >= 1, got 0"),
    (lambda f: [str(f["model"]), "--data", "digits", "--limit", "0"],
     "--limit must be an integer >= 1, got 0"),
])
def test_bad_input_is_one_line_without_tensorflow(folders, case, message):
    done = run_main(["evaluate", *case(folders)])
    expected = message.format(**{k: str(v) for k, v in folders.items()})
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"levit-tf evaluate: error: {expected}"), done.stderr
    assert done.stdout.strip() == "exit 1 TF False"
