"""Batch inference on Apache Beam (DirectRunner) against the SavedModel called in-process.

A folder of real photos (scikit-image's astronaut, chelsea, coffee, rocket, camera; JPEG and
PNG, colour and gray, 300 to 512 px) plus two bad files goes through ``levit_tf.beam`` twice:
in memory (the Python API, batches of up to 4) and with ``--direct_running_mode=
multi_processing --direct_num_workers=2 --batch-size 1`` (the command). Each image's labels
and probabilities must equal ``serve_images`` called on that image alone in this process:
exactly with batches of one; within 1e-5 relative with larger batches, whose float32 matmul
kernels block differently (measured: 6.8e-7 relative for a batch of five). The bad files must
be in the dead letter and counted, and the good ones nowhere else.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("apache_beam")

from levit_tf import LevitConfig, LevitForImageClassification
from levit_tf.serving import export_saved_model
from tests.support.models import SMALL, randomize

PHOTOS = (("astronaut", "JPEG"), ("chelsea", "PNG"), ("coffee", "JPEG"), ("rocket", "JPEG"),
          ("camera", "PNG"))
BAD = {"notes.jpg": b"not an image at all\n", "empty.png": b""}


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
def test_in_memory_pipeline_matches_the_saved_model(saved_model, photos, expected, tmp_path):
    from levit_tf.beam.pipeline import run

    output, dead = tmp_path / "preds.jsonl", tmp_path / "dead.jsonl"
    totals = run(str(saved_model), str(photos / "*"), str(output), str(dead),
                 ["--direct_running_mode=in_memory"], warm_sizes=((512, 512),),
                 max_batch_size=4)
    worst = check_outputs(output, dead, expected, photos, rtol=1e-5)
    assert totals["images"] == len(PHOTOS) and totals["unreadable_images"] == len(BAD)
    assert totals["model_loads"] == 1  # once for the whole (single-process) pipeline
    print(f"in memory: {len(PHOTOS)} predictions, worst relative difference {worst:.1e} "
          f"(bound 1e-5), {len(BAD)} in the dead letter")


@pytest.mark.slow
def test_multi_processing_command_matches_the_saved_model(saved_model, photos, expected,
                                                         tmp_path):
    output = tmp_path / "out" / "preds.jsonl"
    output.parent.mkdir()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [sys.executable, "-m", "levit_tf.beam", "--model", str(saved_model), "--input",
         str(photos / "*"), "--output", str(output), "--warm-sizes", "512x512",
         "--batch-size", "1", "--direct_running_mode=multi_processing",
         "--direct_num_workers=2"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    dead = output.with_name("preds.dead-letter.jsonl")
    assert check_outputs(output, dead, expected, photos) == 0
    assert f"{len(PHOTOS)} images -> {output}; {len(BAD)} unreadable -> {dead}" in done.stdout
    # at most once per worker process (Beam's per-process share), whatever the bundles
    loads = int(done.stdout.split("model loaded ")[1].split()[0])
    assert 1 <= loads <= 2, done.stdout
    assert sorted(p.name for p in output.parent.iterdir()) == [dead.name, output.name]
    print(f"2 worker processes: {len(PHOTOS)} predictions bit-identical, {len(BAD)} dead "
          f"letters, {loads} model loads")


@pytest.mark.parametrize("change, message", [
    ({"--model": "missing"}, "--model missing: not a SavedModel directory"),
    ({"--input": "nothing/*.jpg"}, "--input nothing/*.jpg: no file matches"),
    ({"--top-k": "0"}, "--top-k must be >= 1, got 0"),
    ({"--warm-sizes": "480by640"}, "--warm-sizes: '480by640' is not HxW"),
    ({"--output": "no/such/dir/p.jsonl"}, "--output"),
    ({"--no_such_beam_flag": "1"}, "unknown option --no_such_beam_flag"),
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
