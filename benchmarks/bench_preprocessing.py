"""Eval preprocessing throughput: levit_tf tf.data pipeline vs Hugging Face's PIL processor.

Both sides start from the same JPEG files and include reading + decoding:
decode JPEG -> resize shortest edge 256 (bicubic) -> centre crop 224 -> rescale -> normalize.

Image sets (``--size-mix``):

* ``photos``: the colour/gray photos of ``skimage.data`` and scikit-learn's sample
  images (371x370 .. 1411x1411), written as JPEG (quality 90);
* ``imagenet``: the same photos downsized (PIL LANCZOS) so the long side is 500, the
  typical ImageNet validation size (500x375 / 375x500, ~400x350 on average);
* ``both`` (default): one table per set.

Timing: ``--rounds`` interleaved rounds (PIL pass, tf.data pass, 1-thread tf.data pass,
each over the set ``--repeats`` times); the table shows the median images/s over rounds,
the single-core milliseconds per image (PIL is single-threaded; the 1-thread tf.data row
is the honest per-image cost of the TF side), and the load average (``os.getloadavg``)
around the measurement, since other processes share the CPU. Not timed, printed under the
table: a first tf.data pass (tracing, one XLA compilation per shape bucket; once per
process) and making each pass' iterator (instantiating the map function, ~0.1-0.3 s; once
per epoch, which for a real eval set is tens of thousands of images).

    python -m benchmarks.bench_preprocessing [--repeats 4] [--rounds 3] [--size-mix both]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import PIL.Image

PHOTO_NAMES = ["astronaut", "chelsea", "coffee", "rocket", "cat", "colorwheel",
               "immunohistochemistry", "hubble_deep_field", "retina", "camera", "coins",
               "moon", "page", "text", "clock"]  # fmt: skip


def load_photos() -> list[np.ndarray]:
    """The skimage / sklearn photos as uint8 arrays (H, W) or (H, W, 3)."""
    from skimage import data
    from sklearn.datasets import load_sample_images

    images = [getattr(data, n)() for n in PHOTO_NAMES] + [data.stereo_motorcycle()[0]]
    return images + list(load_sample_images().images)


def downsize(image: np.ndarray, long_side: int = 500) -> np.ndarray:
    """Resizes so the long side is ``long_side`` (aspect kept), like ImageNet's JPEGs."""
    pil = PIL.Image.fromarray(image)
    scale = long_side / max(pil.size)
    size = (max(1, round(pil.width * scale)), max(1, round(pil.height * scale)))
    return np.asarray(pil.resize(size, PIL.Image.Resampling.LANCZOS))


def write_jpegs(images: list[np.ndarray], directory: Path, prefix: str) -> list[str]:
    """Writes images as JPEG (quality 90); returns their paths."""
    paths = []
    for i, image in enumerate(images):
        path = directory / f"{prefix}_{i:02d}.jpg"
        PIL.Image.fromarray(image).save(path, quality=90)
        paths.append(str(path))
    return paths


def write_photos(directory: Path) -> list[str]:
    """Writes the skimage / sklearn photos as JPEG files; returns their paths."""
    return write_jpegs(load_photos(), directory, "photo")


def hf_pil_processor():
    """transformers.LevitImageProcessorPil (hides a torchvision that fails to import)."""
    try:
        import torchvision  # noqa: F401
    except Exception:
        sys.modules["torchvision"] = None  # type: ignore[assignment]
    from transformers import LevitImageProcessorPil

    return LevitImageProcessorPil()


def pil_runner(paths: list[str], repeats: int, batch_size: int) -> Callable[[], float]:
    """One timed pass of HF's processor exactly as HF users run it: PIL open + convert
    (decode) and ``processor(images)`` per batch, single-threaded. Returns images/s."""
    processor = hf_pil_processor()
    files = paths * repeats

    def run() -> float:
        start = time.perf_counter()
        for i in range(0, len(files), batch_size):
            images = []
            for path in files[i : i + batch_size]:
                with PIL.Image.open(path) as image:
                    images.append(image.convert("RGB"))
            processor(images, return_tensors="np")
        return len(files) / (time.perf_counter() - start)

    return run


def tf_dataset(paths: list[str], repeats: int, batch_size: int, single_core: bool):
    """The levit_tf eval pipeline over ``paths * repeats``: read_file -> decode_image (JPEG
    with the accurate integer DCT) -> PIL-exact resize/crop/normalize, batched.
    ``single_core``: a 1-thread tf.data pool and no intra-op parallelism instead of the
    AUTOTUNE map."""
    import tensorflow as tf

    from levit_tf.data import decode_image
    from levit_tf.preprocessing import LevitImageProcessor

    processor = LevitImageProcessor()
    ds = tf.data.Dataset.from_tensor_slices(paths * repeats).map(
        lambda p: processor.tf_preprocess(decode_image(tf.io.read_file(p))),
        num_parallel_calls=1 if single_core else tf.data.AUTOTUNE,
    )
    ds = ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    if single_core:
        options = tf.data.Options()
        options.threading.private_threadpool_size = 1
        options.threading.max_intra_op_parallelism = 1
        ds = ds.with_options(options)
    return ds


def tf_runner(
    paths: list[str], repeats: int, batch_size: int, single_core: bool, setup: dict[str, float]
) -> Callable[[], float]:
    """One timed pass (``len(paths) * repeats`` images) of :func:`tf_dataset`. Returns images/s.

    Each pass makes a fresh iterator (so nothing runs between passes), untimed: making it
    instantiates the map function (a one-off per epoch); the median of those times goes to
    ``setup``, as does the untimed first pass (tracing, one XLA compilation per shape bucket).
    """
    ds = tf_dataset(paths, repeats, batch_size, single_core)
    start = time.perf_counter()
    for _ in ds:
        pass
    setup["first pass"] = time.perf_counter() - start
    made: list[float] = []
    n = len(paths) * repeats

    def run() -> float:
        start = time.perf_counter()
        iterator = iter(ds)
        made.append(time.perf_counter() - start)
        setup["make iterator (median)"] = statistics.median(made)
        start = time.perf_counter()
        for _ in iterator:
            pass
        return n / (time.perf_counter() - start)

    return run


PIL_NAME = "HF LevitImageProcessorPil (PIL decode)"
TF_NAME = "levit_tf tf.data (decode_jpeg + exact)"
TF1_NAME = "levit_tf tf.data, 1 thread"


def measure(paths: list[str], args: argparse.Namespace, setup: dict[str, dict[str, float]]):
    """Interleaved rounds of the pipelines; images/s per round."""
    setup.update({TF_NAME: {}, TF1_NAME: {}})
    runners = {
        PIL_NAME: pil_runner(paths, args.repeats, args.batch_size),
        TF_NAME: tf_runner(paths, args.repeats, args.batch_size, False, setup[TF_NAME]),
        TF1_NAME: tf_runner(paths, args.repeats, args.batch_size, True, setup[TF1_NAME]),
    }
    rates: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(args.rounds):
        for name, run in runners.items():
            rates[name].append(run())
    return rates


def print_table(title: str, paths: list[str], rates: dict[str, list[float]], load,
                setup) -> list[str]:
    """Prints the table of one image set and returns its lines."""
    import tensorflow as tf

    sizes = [PIL.Image.open(p).size for p in paths]
    mean_wh = np.mean(sizes, axis=0)
    intra = tf.config.threading.get_intra_op_parallelism_threads() or "auto"
    inter = tf.config.threading.get_inter_op_parallelism_threads() or "auto"
    threads = {
        PIL_NAME: "1 (Python, single process)",
        TF_NAME: f"tf.data AUTOTUNE map; TF intra {intra}, inter {inter}",
        TF1_NAME: "1 (tf.data private pool 1, intra-op 1)",
    }
    lines = [f"== {title}: {len(paths)} JPEGs, {min(sizes)} .. {max(sizes)} WxH, "
             f"mean {mean_wh[0]:.0f}x{mean_wh[1]:.0f}",
             f"CPU cores: {os.cpu_count()}; load average (1 min) before {load[0]:.2f}, "
             f"after {load[1]:.2f}",
             f"{'pipeline':40s} {'img/s (median)':>14s} {'min..max':>13s} {'vs PIL':>7s} "
             f"{'ms/img':>7s}  threads"]
    base = statistics.median(rates[PIL_NAME])
    for name, values in rates.items():
        med = statistics.median(values)
        spread = f"{min(values):.0f}..{max(values):.0f}"
        lines.append(f"{name:40s} {med:14.1f} {spread:>13s} {med / base:6.2f}x "
                     f"{1e3 / med:7.2f}  {threads[name]}")
    for name, times in setup.items():
        parts = ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in times.items())
        lines.append(f"one-off, untimed ({name}): {parts}")
    print("\n" + "\n".join(lines))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=4, help="passes over the set per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--size-mix", choices=["photos", "imagenet", "both"], default="both")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for preprocessing.txt (default: benchmarks/results/, or "
                             "its avx512_vnni/ on such CPUs)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    with tempfile.TemporaryDirectory() as tmp:
        photos = load_photos()
        sets = {}
        if args.size_mix in ("photos", "both"):
            sets["photos"] = write_jpegs(photos, Path(tmp), "photo")
        if args.size_mix in ("imagenet", "both"):
            small = [downsize(p) for p in photos]
            sets["imagenet-sized (long side 500)"] = write_jpegs(small, Path(tmp), "small")
        from levit_tf.cpu_features import cpu_flags, cpu_model, int8_capability

        lines = [f"CPU: {cpu_model()}, {int8_capability()}"]
        for title, paths in sets.items():
            before = os.getloadavg()[0]
            setup: dict[str, dict[str, float]] = {}
            rates = measure(paths, args, setup)
            lines += ["", *print_table(title, paths, rates, (before, os.getloadavg()[0]), setup)]
    # results/ holds the AVX2 figures, results/avx512_vnni/ those of VNNI CPUs
    results = Path(__file__).resolve().parent / "results"
    out = args.out or (results / "avx512_vnni" if "avx512_vnni" in cpu_flags() else results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "preprocessing.txt").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / 'preprocessing.txt'}")


if __name__ == "__main__":
    main()
