"""Eval preprocessing throughput: levit_tf tf.data pipeline vs Hugging Face's PIL processor.

Both sides start from the same JPEG files (the colour/gray photos of ``skimage.data``
and scikit-learn's sample images, written to a temp dir) and include decoding:
decode JPEG -> resize shortest edge 256 (bicubic) -> centre crop 224 -> rescale -> normalize.

    python benchmarks/bench_preprocessing.py [--repeats 8] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import PIL.Image
from tqdm import tqdm


def write_photos(directory: Path) -> list[str]:
    """Writes the skimage / sklearn photos as JPEG files; returns their paths."""
    from skimage import data
    from sklearn.datasets import load_sample_images

    names = ["astronaut", "chelsea", "coffee", "rocket", "cat", "colorwheel",
             "immunohistochemistry", "hubble_deep_field", "retina", "camera", "coins",
             "moon", "page", "text", "clock"]  # fmt: skip
    images = [getattr(data, n)() for n in names] + [data.stereo_motorcycle()[0]]
    images += list(load_sample_images().images)
    paths = []
    for i, image in enumerate(images):
        path = directory / f"photo_{i:02d}.jpg"
        PIL.Image.fromarray(image).save(path, quality=90)
        paths.append(str(path))
    return paths


def hf_pil_processor():
    """transformers.LevitImageProcessorPil (hides a torchvision that fails to import)."""
    try:
        import torchvision  # noqa: F401
    except Exception:
        sys.modules["torchvision"] = None  # type: ignore[assignment]
    from transformers import LevitImageProcessorPil

    return LevitImageProcessorPil()


def bench_pil(paths: list[str], repeats: int, batch_size: int) -> float:
    processor = hf_pil_processor()
    files = paths * repeats
    start = time.perf_counter()
    for i in tqdm(range(0, len(files), batch_size), desc="HF PIL processor", unit="batch"):
        images = []
        for path in files[i : i + batch_size]:
            with PIL.Image.open(path) as image:
                images.append(image.convert("RGB"))
        processor(images, return_tensors="np")
    return len(files) / (time.perf_counter() - start)


def bench_tf(paths: list[str], repeats: int, batch_size: int) -> float:
    import tensorflow as tf

    from levit_tf.data import decode_image
    from levit_tf.preprocessing import LevitImageProcessor

    processor = LevitImageProcessor()
    ds = (
        tf.data.Dataset.from_tensor_slices(paths * repeats)
        .map(lambda p: processor.tf_preprocess(decode_image(tf.io.read_file(p))),
             num_parallel_calls=tf.data.AUTOTUNE)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )  # fmt: skip
    for _ in ds.take(1):  # trace / warm up outside the timing
        pass
    n = len(paths) * repeats
    start = time.perf_counter()
    for _ in tqdm(ds, desc="levit_tf tf.data", unit="batch", total=-(-n // batch_size)):
        pass
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=8, help="passes over the photo set")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        paths = write_photos(Path(tmp))
        sizes = [PIL.Image.open(p).size for p in paths]
        tf_rate = bench_tf(paths, args.repeats, args.batch_size)
        pil_rate = bench_pil(paths, args.repeats, args.batch_size)
    print(f"\n{len(paths)} JPEG photos ({min(sizes)} .. {max(sizes)} WxH), x{args.repeats} passes")
    print(f"CPU cores: {os.cpu_count()}; TF intra-op threads: "
          f"{tf.config.threading.get_intra_op_parallelism_threads() or 'auto'}, inter-op: "
          f"{tf.config.threading.get_inter_op_parallelism_threads() or 'auto'}; "
          f"tf.data map: AUTOTUNE; PIL: 1 thread")  # fmt: skip
    print(f"{'pipeline':42s} {'images/s':>10s} {'speed-up':>9s}")
    print(f"{'HF LevitImageProcessorPil (PIL decode)':42s} {pil_rate:10.1f} {1.0:9.2f}x")
    label = "levit_tf tf.data (decode_jpeg + PIL-exact)"
    print(f"{label:42s} {tf_rate:10.1f} {tf_rate / pil_rate:9.2f}x")


if __name__ == "__main__":
    main()
