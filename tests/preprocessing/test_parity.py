"""Pixel parity with Hugging Face's PIL-backed LevitImageProcessor on real photos."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import tensorflow as tf

from levit_tf.preprocessing import LevitImageProcessor, pil_resize

STD = np.array([0.229, 0.224, 0.225], np.float32)
MAX_LEVELS = 1.0  # tolerance from the issue; the implementation is bit-exact (0)
MEAN_LEVELS = 0.1


def _odd_shapes(photos: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Crops / resizes for odd shapes: extreme aspect ratios, upsampling, tiny images."""
    out = {}
    for name in ("astronaut", "coffee", "retina", "sklearn_china"):
        image = PIL.Image.fromarray(photos[name])
        out[f"{name}_30x600"] = np.asarray(image.resize((600, 30)))
        out[f"{name}_600x30"] = np.asarray(image.resize((30, 600)))
        out[f"{name}_61x97"] = np.asarray(image.resize((97, 61)))
        out[f"{name}_5x7"] = np.ascontiguousarray(photos[name][:5, :7])
        out[f"{name}_333x257crop"] = np.ascontiguousarray(photos[name][17:350, 40:297])
    out["astronaut_224x224"] = np.asarray(
        PIL.Image.fromarray(photos["astronaut"]).resize((224, 224))
    )
    out["astronaut_256x300"] = np.ascontiguousarray(photos["astronaut"][:256, :300])
    return out


def _levels(ref: np.ndarray, ours: np.ndarray) -> np.ndarray:
    """|difference| of normalized NHWC pixels, in uint8 levels."""
    return np.abs(ref - ours) * STD * 255.0


def test_pixel_values_match_hf_pil_processor(photos, hf_pil_processor_cls, record_property):
    reference = hf_pil_processor_cls()
    ours = LevitImageProcessor()
    images = {**photos, **_odd_shapes(photos)}
    rows = []
    for name, array in images.items():
        image = PIL.Image.fromarray(array)
        ref = reference(image, do_convert_rgb=True, return_tensors="np")["pixel_values"]
        out = ours(image)["pixel_values"]
        assert out.shape == (1, 224, 224, 3) and out.dtype == np.float32
        levels = _levels(ref.transpose(0, 2, 3, 1), out)
        rows.append((name, array.shape, float(levels.max()), float(levels.mean())))
        assert levels.max() <= MAX_LEVELS, f"{name}: max deviation {levels.max():.3f} levels"
        assert levels.mean() <= MEAN_LEVELS, f"{name}: mean deviation {levels.mean():.4f} levels"
    table = "\n".join(f"{n:28s} {s!s:16s} max {m:.4f} mean {a:.5f}" for n, s, m, a in rows)
    record_property("parity_table", table)
    print("\nper-photo deviation vs LevitImageProcessorPil (uint8 levels)\n" + table)
    assert len(rows) >= 40


def test_uint8_resize_crop_matches_pil_exactly(photos, hf_pil_processor_cls):
    """The resized + cropped uint8 pixels (before rescale/normalize) are identical."""
    reference = hf_pil_processor_cls()
    kwargs = {"do_rescale": False, "do_normalize": False}
    ours = LevitImageProcessor(**kwargs)
    for name in ("chelsea", "rocket", "hubble_deep_field", "camera", "logo_rgba"):
        image = PIL.Image.fromarray(photos[name])
        ref = reference(image, do_convert_rgb=True, return_tensors="np", **kwargs)["pixel_values"]
        out = ours(image)["pixel_values"]
        np.testing.assert_array_equal(out, ref.transpose(0, 2, 3, 1), err_msg=name)


def test_numpy_input_equals_pil_input(photos):
    processor = LevitImageProcessor()
    for name in ("coffee", "moon", "logo_rgba", "horse_binary"):
        array = photos[name]
        from_array = processor(array)["pixel_values"]
        from_pil = processor(PIL.Image.fromarray(array))["pixel_values"]
        np.testing.assert_array_equal(from_array, from_pil, err_msg=name)


@pytest.mark.parametrize("resample", [PIL.Image.Resampling.BICUBIC, PIL.Image.Resampling.BILINEAR])
def test_pil_resize_random_sizes(photos, resample):
    """Arbitrary in/out sizes (up, down, mixed; both Pillow pass orders) are bit-exact."""
    rng = np.random.default_rng(0)
    fn = tf.function(
        lambda im, h, w: pil_resize(im, (h, w), int(resample)),
        input_signature=[
            tf.TensorSpec([None, None, 3], tf.uint8),
            tf.TensorSpec([], tf.int32),
            tf.TensorSpec([], tf.int32),
        ],
    )
    sources = [photos["astronaut"], photos["rocket"], photos["hubble_deep_field"]]
    for i in range(24):
        src = sources[i % 3]
        h, w = int(rng.integers(1, src.shape[0])), int(rng.integers(1, src.shape[1]))
        array = np.ascontiguousarray(src[:h, :w])
        oh, ow = int(rng.integers(1, 500)), int(rng.integers(1, 500))
        expected = np.asarray(PIL.Image.fromarray(array).resize((ow, oh), resample))
        got = fn(tf.constant(array), oh, ow).numpy()
        np.testing.assert_array_equal(got, expected, err_msg=f"{(h, w)} -> {(oh, ow)}")


def test_tf_image_resize_is_not_pil_exact(photos):
    """Why this module exists: TF's antialiased bicubic is several levels off PIL."""
    array = photos["astronaut"]
    pil = np.asarray(PIL.Image.fromarray(array).resize((256, 256), PIL.Image.Resampling.BICUBIC))
    tfr = tf.image.resize(array, (256, 256), "bicubic", antialias=True)
    tfr = tf.cast(tf.clip_by_value(tf.round(tfr), 0, 255), tf.uint8).numpy()
    ours = pil_resize(tf.constant(array), (256, 256)).numpy()
    assert np.abs(tfr.astype(int) - pil).max() > 1
    np.testing.assert_array_equal(ours, pil)
