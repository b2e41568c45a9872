"""Decoding odd formats to uint8 RGB, and naming corrupt files."""

from __future__ import annotations

import io

import numpy as np
import PIL.Image
import pytest
import tensorflow as tf

from levit_tf.data import BadImageError, decode_image, scan_image_files, scanned_bytes_dataset


@pytest.fixture(scope="module")
def rgb(photos) -> np.ndarray:
    return np.ascontiguousarray(photos["astronaut"][::4, ::4])  # 128 x 128


def _write_formats(tmp_path, rgb: np.ndarray) -> dict[str, tuple[str, np.ndarray]]:
    """Writes one file per odd format with PIL; returns name -> (path, expected RGB)."""
    rng = np.random.default_rng(0)
    alpha = rng.integers(0, 256, rgb.shape[:2], dtype=np.uint8)
    sixteen = rgb[..., 0].astype(np.uint16) * 257 + 100
    base = PIL.Image.fromarray(rgb)
    specs = {
        "rgb.jpg": (base, {}),
        "gray.jpg": (base.convert("L"), {}),
        "cmyk.jpg": (base.convert("CMYK"), {}),
        "rgb.png": (base, {}),
        "rgba.png": (PIL.Image.fromarray(np.dstack([rgb, alpha])), {}),
        "gray.png": (base.convert("L"), {}),
        "la.png": (base.convert("LA"), {}),
        "palette.png": (base.convert("P"), {}),
        "palette_trns.png": (base.convert("P"), {"transparency": 3}),
        "gray16.png": (PIL.Image.fromarray(sixteen), {}),
        "bilevel.png": (base.convert("1"), {}),
        "rgb.bmp": (base, {}),
        "gray.bmp": (base.convert("L"), {}),
        "palette.bmp": (base.convert("P"), {}),
        "bilevel.bmp": (base.convert("1"), {}),
        "anim.gif": (
            base.convert("P"),
            {"save_all": True, "append_images": [base.rotate(90).convert("P")]},
        ),
        "rgb.tiff": (base, {}),
        "rgb.webp": (base, {"lossless": True}),
    }
    out = {}
    for name, (image, kwargs) in specs.items():
        path = tmp_path / name
        image.save(path, **kwargs)
        with PIL.Image.open(path) as reread:  # 16-bit gray (I;16) included: PIL clips it
            expected = np.asarray(reread.convert("RGB"))  # first frame for GIF
        out[name] = (str(path), expected)
    return out


def test_odd_formats_decode_like_pil(tmp_path, rgb):
    formats = _write_formats(tmp_path, rgb)
    files, kept = scan_image_files([p for p, _ in formats.values()], on_error="raise")
    assert kept == list(range(len(formats)))
    converted = {f.path.rsplit("/", 1)[-1] for f in files if f.inline}
    assert converted == {"palette.bmp", "bilevel.bmp", "rgb.tiff", "rgb.webp"}
    decoded = {
        path.numpy().decode(): decode_image(data).numpy()
        for path, data in scanned_bytes_dataset(files)
    }
    for name, (path, expected) in formats.items():
        got = decoded[path]
        assert got.dtype == np.uint8 and got.shape == (128, 128, 3), name
        np.testing.assert_array_equal(got, expected, err_msg=name)


def test_tf_decode_image_alone_gets_palette_bmp_wrong(tmp_path, rgb):
    """Why palette BMPs go through PIL: TF returns palette indices for them."""
    buffer = io.BytesIO()
    PIL.Image.fromarray(rgb).convert("P").save(buffer, "BMP")
    raw = tf.io.decode_image(buffer.getvalue(), channels=3, expand_animations=False).numpy()
    expected = np.asarray(PIL.Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    assert np.abs(raw.astype(int) - expected).max() > 10


def test_jpeg_decode_is_pil_exact_only_with_accurate_dct(tmp_path, photos):
    buffer = io.BytesIO()
    PIL.Image.fromarray(photos["chelsea"]).save(buffer, "JPEG", quality=90)
    data = buffer.getvalue()
    expected = np.asarray(PIL.Image.open(io.BytesIO(data)))
    np.testing.assert_array_equal(decode_image(tf.constant(data)).numpy(), expected)
    default = tf.io.decode_image(data, channels=3).numpy()
    assert np.abs(default.astype(int) - expected).max() > 0


def _corrupt_files(tmp_path, rgb) -> list[str]:
    good = tmp_path / "good.jpg"
    PIL.Image.fromarray(rgb).save(good)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[:1500])
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    return [str(good), str(truncated), str(text), str(empty)]


def test_corrupt_files_skipped_with_named_warnings(tmp_path, rgb):
    paths = _corrupt_files(tmp_path, rgb)
    with pytest.warns(UserWarning) as record:
        files, kept = scan_image_files(paths, on_error="skip")
    assert [f.path for f in files] == [paths[0]] and kept == [0]
    messages = [str(w.message) for w in record]
    for bad in paths[1:]:
        assert any(bad in m for m in messages), (bad, messages)


def test_corrupt_file_raises_naming_it(tmp_path, rgb):
    paths = _corrupt_files(tmp_path, rgb)
    with pytest.raises(BadImageError, match=r"truncated\.jpg"):
        scan_image_files(paths, on_error="raise")
    with pytest.raises(ValueError, match="on_error"):
        scan_image_files(paths, on_error="ignore")
