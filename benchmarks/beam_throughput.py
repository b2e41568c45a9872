"""Batch inference throughput: ``python -m levit_tf.beam`` (DirectRunner) vs a plain loop.

Both sides classify the same image files with the same SavedModel (``serve_images``: reading,
decoding, the PIL-exact preprocessing and the model) and include reading the files:

* ``loop``: one process, ``ServedModel.predict`` on batches of ``--batch-size`` files;
* ``beam in_memory``: ``levit_tf.beam.pipeline.run`` with ``--direct_running_mode=in_memory``;
* ``beam multi_processing xN``: the same with ``--direct_num_workers=N`` worker processes.

Beam rows are end-to-end wall time (pipeline start, every worker's model load and warm-up,
writing the JSON lines); the loop row excludes its one load and warm-up, which are reported
apart as the per-worker cost: ``tf.saved_model.load`` plus one image per size in
``levit_tf.beam.served.COMMON_SIZES`` (each compiles the preprocessing kernels of its size
buckets), measured in a fresh process. The images (``--images``, default 1000) are copies of
scikit-image's photos downsized to ImageNet-like sizes (long side 500), written as JPEG.
The model is ``--preset`` at random init (the speed does not depend on the weights), or
``--model DIR``, a SavedModel from ``levit-tf export-savedmodel``.

    python -m benchmarks.beam_throughput [--images 1000] [--workers 2] [--preset levit-128S]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PHOTO_NAMES = ["astronaut", "chelsea", "coffee", "rocket", "cat", "hubble_deep_field",
               "immunohistochemistry", "retina", "camera", "colorwheel"]

WARMUP_SCRIPT = """
import json, sys, time
from levit_tf.beam.served import COMMON_SIZES, ServedModel, blank_jpeg
served = ServedModel(sys.argv[1], warm_sizes=())
sizes = {}
for height, width in COMMON_SIZES:
    start = time.perf_counter()
    served.predict([blank_jpeg(height, width)])
    sizes[f"{height}x{width}"] = time.perf_counter() - start
print(json.dumps({"load": served.load_seconds, "sizes": sizes}))
"""


def write_images(folder: Path, count: int) -> list[Path]:
    """``count`` JPEGs: the photos at long side 500, repeated (distinct files)."""
    from PIL import Image
    from skimage import data

    photos = []
    for name in PHOTO_NAMES:
        image = Image.fromarray(getattr(data, name)()).convert("RGB")
        scale = 500 / max(image.size)
        photos.append(image.resize((round(image.width * scale), round(image.height * scale)),
                                   Image.Resampling.LANCZOS))
    paths = []
    for i in range(count):
        path = folder / f"img{i:05d}.jpg"
        photos[i % len(photos)].save(path, format="JPEG", quality=90)
        paths.append(path)
    return paths


def export(preset: str, directory: Path) -> Path:
    import keras

    from levit_tf import LevitConfig, LevitForImageClassification
    from levit_tf.export.saved_model import export_saved_model

    keras.utils.set_random_seed(0)
    config = LevitConfig.from_preset(preset, id2label={i: f"class{i}" for i in range(1000)})
    return export_saved_model(LevitForImageClassification(config), directory)


def loop(model: str, paths: list[Path], batch_size: int) -> float:
    """Images/s of the plain in-process loop (after its load and warm-up)."""
    from levit_tf.beam.served import ServedModel

    served = ServedModel(model)
    start = time.perf_counter()
    for i in range(0, len(paths), batch_size):
        served.predict([p.read_bytes() for p in paths[i:i + batch_size]])
    return len(paths) / (time.perf_counter() - start)


def beam(model: str, folder: Path, out: Path, args: list[str], batch_size: int
         ) -> tuple[float, dict]:
    from levit_tf.beam.pipeline import run

    start = time.perf_counter()
    totals = run(model, str(folder / "*.jpg"), str(out / "preds.jsonl"),
                 str(out / "dead.jsonl"), args, max_batch_size=batch_size)
    return time.perf_counter() - start, totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--preset", default="levit-128S")
    parser.add_argument("--model", default=None, help="a SavedModel directory")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = args.model or str(export(args.preset, tmp / "model"))
        folder = tmp / "images"
        folder.mkdir()
        paths = write_images(folder, args.images)
        warm = json.loads(subprocess.run(
            [sys.executable, "-c", WARMUP_SCRIPT, model], capture_output=True, text=True,
            check=True).stdout.splitlines()[-1])
        rows = [("loop (1 process)", loop(model, paths, args.batch_size),
                 "after its load and warm-up")]
        for label, flags in (
                ("beam in_memory", ["--direct_running_mode=in_memory"]),
                (f"beam multi_processing x{args.workers}",
                 ["--direct_running_mode=multi_processing",
                  f"--direct_num_workers={args.workers}"])):
            out = tmp / label.replace(" ", "_")
            out.mkdir()
            seconds, totals = beam(model, folder, out, flags, args.batch_size)
            assert totals.get("images") == args.images, totals
            rows.append((label, args.images / seconds, f"{seconds:.1f} s end to end"))
    load = os.getloadavg()
    print(f"{args.images} JPEGs (long side 500), {args.preset if not args.model else model}, "
          f"batch {args.batch_size}, {os.cpu_count()} CPUs, load average {load[0]:.1f}")
    print(f"| {'pipeline':<28} | images/s | note |")
    print(f"|{'-' * 30}|---------:|------|")
    for label, rate, note in rows:
        print(f"| {label:<28} | {rate:8.1f} | {note} |")
    total = sum(warm["sizes"].values())
    print(f"warm-up per worker process: load {warm['load']:.1f} s + {total:.1f} s for "
          f"{len(warm['sizes'])} sizes (" + ", ".join(
              f"{k} {v:.1f} s" for k, v in warm["sizes"].items()) + ")")


if __name__ == "__main__":
    main()
