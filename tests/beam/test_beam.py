"""Batch inference on Apache Beam (DirectRunner) against the SavedModel called in-process.

A folder of real photos (scikit-image's astronaut, chelsea, coffee, rocket, camera; JPEG and
PNG, colour and gray, 300 to 512 px) plus two bad files goes through ``levit_tf.beam`` twice:
in memory (the Python API, batches of up to 4) and with ``--direct_running_mode=
multi_processing --direct_num_workers=2 --batch-size 1`` (the command). Each image's labels
and probabilities must equal ``serve_images`` called on that image alone in this process:
exactly with batches of one; within 1e-5 relative with larger batches, whose float32 matmul
kernels block differently (measured: 6.8e-7 relative for a batch of five). The bad files must
be in the dead letter and counted, and the good ones nowhere else.

Beam runs in subprocesses with the ``tests/support/beam_env`` overlay first on PYTHONPATH
(apache-beam needs pillow < 13, which the test venv does not take); the reference predictions
come from this process.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from levit_tf import LevitConfig, LevitForImageClassification
from levit_tf.export.saved_model import export_saved_model
from levit_tf.testing.models import SMALL, randomize
from tests.support.beam_env import beam_environment, beam_overlay

PHOTOS = (("astronaut", "JPEG"), ("chelsea", "PNG"), ("coffee", "JPEG"), ("rocket", "JPEG"),
          ("camera", "PNG"))
BAD = {"notes.jpg": b"not an image at all\n", "empty.png": b""}


@pytest.fixture(scope="module")
def beam_env() -> dict[str, str]:
    """Environment for subprocesses that run Beam (the overlay is built on first use)."""
    return beam_environment(beam_overlay())


def run_beam(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "levit_tf.beam", *args], capture_output=True,
                          text=True, env=env, timeout=300)


def model_loads(stdout: str) -> int:
    return int(stdout.split("model loaded ")[1].split()[0])


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> Path:
    model = randomize(LevitForImageClassification(LevitConfig(**SMALL)), seed=5)
    return export_saved_model(model, tmp_path_factory.mktemp("sm") / "levit" / "1", top_k=3)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    for name, fmt in PHOTOS:
        Image.fromarray(getattr(data, name)()).save(folder / f"{name}.{fmt.lower()}", fmt)
    for name, content in BAD.items():
        (folder / name).write_bytes(content)
    return folder


@pytest.fixture(scope="module")
def expected(saved_model, photos) -> dict[str, dict]:
    """``serve_images`` in this process, one image per call."""
    from levit_tf.beam.served import ServedModel

    served = ServedModel(str(saved_model), warm_sizes=())
    results = {}
    for name, fmt in PHOTOS:
        path = photos / f"{name}.{fmt.lower()}"
        out = served.predict([path.read_bytes()])
        results[str(path)] = {"labels": list(out["top_k_labels"][0]),
                              "probabilities": out["top_k_probabilities"][0],
                              "indices": list(out["top_k_indices"][0])}
    return results


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def check_outputs(output: Path, dead_letter: Path, expected: dict, photos: Path,
                  rtol: float = 0.0) -> float:
    """Checks both files; returns the largest relative difference of a probability."""
    records = {r["path"]: r for r in read_jsonl(output)}
    assert sorted(records) == sorted(expected)
    worst = 0.0
    for path, record in records.items():
        want = expected[path]
        assert record["labels"] == want["labels"] and record["indices"] == want["indices"]
        got = np.float32(record["probabilities"])  # float32 -> JSON -> float32: exact
        worst = max(worst, float(np.max(np.abs(got - want["probabilities"])
                                        / want["probabilities"])))
        if rtol:
            np.testing.assert_allclose(got, want["probabilities"], rtol=rtol, atol=0)
        else:
            np.testing.assert_array_equal(got, want["probabilities"])
        assert record["probabilities"] == sorted(record["probabilities"], reverse=True)
    failed = {r["path"]: r["error"] for r in read_jsonl(dead_letter)}
    assert sorted(failed) == sorted(str(photos / name) for name in BAD)
    assert all(failed.values())
    return worst


@pytest.mark.slow
def test_in_memory_pipeline_matches_the_saved_model(beam_env, saved_model, photos, expected,
                                                    tmp_path):
    output, dead = tmp_path / "preds.jsonl", tmp_path / "dead.jsonl"
    done = run_beam(beam_env, "--model", str(saved_model), "--input", str(photos / "*"),
                    "--output", str(output), "--dead-letter", str(dead), "--warm-sizes",
                    "512x512", "--batch-size", "4", "--direct_running_mode=in_memory")
    assert done.returncode == 0, done.stderr[-3000:]
    worst = check_outputs(output, dead, expected, photos, rtol=1e-5)
    assert f"{len(PHOTOS)} images -> {output}; {len(BAD)} unreadable -> {dead}" in done.stdout
    assert model_loads(done.stdout) == 1  # once for the whole (single-process) pipeline
    print(f"in memory: {len(PHOTOS)} predictions, worst relative difference {worst:.1e} "
          f"(bound 1e-5), {len(BAD)} in the dead letter")


@pytest.mark.slow
def test_multi_processing_command_matches_the_saved_model(beam_env, saved_model, photos,
                                                         expected, tmp_path):
    output = tmp_path / "out" / "preds.jsonl"
    output.parent.mkdir()
    done = run_beam(beam_env, "--model", str(saved_model), "--input", str(photos / "*"),
                    "--output", str(output), "--warm-sizes", "512x512", "--batch-size", "1",
                    "--direct_running_mode=multi_processing", "--direct_num_workers=2")
    assert done.returncode == 0, done.stderr[-3000:]
    dead = output.with_name("preds.dead-letter.jsonl")
    assert check_outputs(output, dead, expected, photos) == 0
    assert f"{len(PHOTOS)} images -> {output}; {len(BAD)} unreadable -> {dead}" in done.stdout
    # at most once per worker process (Beam's per-process share), whatever the bundles
    loads = model_loads(done.stdout)
    assert 1 <= loads <= 2, done.stdout
    assert sorted(p.name for p in output.parent.iterdir()) == [dead.name, output.name]
    print(f"2 worker processes: {len(PHOTOS)} predictions bit-identical, {len(BAD)} dead "
          f"letters, {loads} model loads")


def test_unknown_beam_flag_is_one_line_and_exit_1(beam_env, saved_model, photos, tmp_path):
    done = run_beam(beam_env, "--model", str(saved_model), "--input", str(photos / "*.jpg"),
                    "--output", str(tmp_path / "p.jsonl"), "--no_such_beam_flag", "1")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert "unknown option --no_such_beam_flag" in done.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("change, message", [
    ({"--model": "missing"}, "--model missing: not a SavedModel directory"),
    ({"--input": "nothing/*.jpg"}, "--input nothing/*.jpg: no file matches"),
    ({"--top-k": "0"}, "--top-k must be >= 1, got 0"),
    ({"--warm-sizes": "480by640"}, "--warm-sizes: '480by640' is not HxW"),
    ({"--output": "no/such/dir/p.jsonl"}, "--output"),
])
def test_bad_command_line_is_one_line_and_exit_1(saved_model, photos, tmp_path, capsys,
                                                 change, message):
    from levit_tf.beam.__main__ import main

    flags = {"--model": str(saved_model), "--input": str(photos / "*.jpg"),
             "--output": str(tmp_path / "p.jsonl"), **change}
    argv = [item for pair in flags.items() for item in pair]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not any(tmp_path.iterdir())


def test_missing_flag_is_one_line_and_exit_1(capsys):
    from levit_tf.beam.__main__ import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--model", "m"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err == "levit_tf.beam: error: the following arguments are required: --input, --output\n"


@pytest.mark.skipif(importlib.util.find_spec("apache_beam") is not None,
                    reason="this venv has Beam; the message is for installs without it")
def test_without_beam_the_command_names_the_extra(saved_model, photos, tmp_path, capsys):
    from levit_tf.beam.__main__ import main

    assert main(["--model", str(saved_model), "--input", str(photos / "*.jpg"),
                 "--output", str(tmp_path / "p.jsonl")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "levit-tf[beam]" in err, err
    assert not any(tmp_path.iterdir())
