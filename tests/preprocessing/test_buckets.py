"""The XLA kernels run on shape-bucketed input: exactness at bucket edges and odd shapes."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import tensorflow as tf

from levit_tf.preprocessing import LevitImageProcessor, pil_resize, pil_resize_crop
from levit_tf.preprocessing.pil_resample import shape_bucket

RESAMPLES = [PIL.Image.Resampling.BICUBIC, PIL.Image.Resampling.BILINEAR]
DYNAMIC = [tf.TensorSpec([None, None, None], tf.uint8)] + [tf.TensorSpec([], tf.int32)] * 2


def _pil_per_channel(array: np.ndarray, hw: tuple[int, int], resample) -> np.ndarray:
    """PIL resize of each channel as an 'L' image (Pillow's per-band arithmetic)."""
    bands = [
        np.asarray(PIL.Image.fromarray(array[:, :, c]).resize(hw[::-1], resample))
        for c in range(array.shape[2])
    ]
    return np.stack(bands, axis=-1)


def test_shape_bucket_values():
    sizes = np.arange(1, 5000)
    buckets = shape_bucket(tf.constant(sizes, tf.int32)).numpy()
    assert (buckets >= sizes).all() and (np.diff(buckets) >= 0).all()
    assert (buckets[sizes >= 128] <= 1.125 * sizes[sizes >= 128]).all()
    assert len(set(buckets)) == 8 + 8 * 5 + 2  # 16..128 by 16, 8 per octave to 4096, 5120
    edges = {1: 16, 16: 16, 17: 32, 128: 128, 129: 144, 144: 144, 145: 160, 256: 256, 257: 288}
    for n, bucket in edges.items():
        assert shape_bucket(tf.constant([n]))[0] == bucket, n


@pytest.mark.parametrize("resample", RESAMPLES)
def test_sizes_around_bucket_edges(photos, resample):
    """Inputs and outputs whose sizes sit on, just below and just above bucket edges."""
    fn = tf.function(
        lambda im, h, w: pil_resize(im, (h, w), int(resample)), input_signature=DYNAMIC
    )
    src = photos["astronaut"]
    for size in (15, 16, 17, 127, 128, 129, 143, 144, 145, 288, 289):
        array = np.ascontiguousarray(src[:size, 100 : 100 + size + 3])
        for out in ((size - 1, size + 1), (224, 224), (size, 17)):
            expected = np.asarray(PIL.Image.fromarray(array).resize(out[::-1], resample))
            got = fn(tf.constant(array), *out).numpy()
            np.testing.assert_array_equal(got, expected, err_msg=f"{array.shape} -> {out}")


@pytest.mark.parametrize("resample", RESAMPLES)
def test_tiny_and_extreme_aspect_ratios(photos, resample):
    fn = tf.function(
        lambda im, h, w: pil_resize(im, (h, w), int(resample)), input_signature=DYNAMIC
    )
    src = np.asarray(PIL.Image.fromarray(photos["coffee"]).resize((600, 600)))
    cases = [
        ((1, 1), (7, 5)), ((2, 3), (256, 384)), ((1, 400), (3, 30)), ((400, 1), (30, 3)),
        ((30, 600), (256, 5120)), ((600, 30), (5120, 256)), ((600, 30), (20, 224)),
    ]  # fmt: skip
    for (h, w), out in cases:
        array = np.ascontiguousarray(src[:h, :w])
        expected = np.asarray(PIL.Image.fromarray(array).resize(out[::-1], resample))
        np.testing.assert_array_equal(fn(tf.constant(array), *out).numpy(), expected, f"{h}x{w}")


@pytest.mark.parametrize("channels", [1, 2, 4])
def test_gray_and_alpha_channels_resize_per_band(photos, channels):
    """1, 2 and 4 channels: each band as PIL resizes an 'L' image (no alpha premultiplying)."""
    rng = np.random.default_rng(channels)
    base = photos["rocket"][:300, :333]
    array = np.concatenate(
        [base, rng.integers(0, 256, (*base.shape[:2], 1), dtype=np.uint8)], axis=-1
    )[:, :, 4 - channels :]
    for resample in RESAMPLES:
        got = pil_resize(tf.constant(array), (211, 97), int(resample)).numpy()
        np.testing.assert_array_equal(got, _pil_per_channel(array, (211, 97), resample))


def test_crop_larger_than_resize_is_zero_padded(photos):
    """HF centre crop offsets ((resized - crop) // 2) and zero padding, static and dynamic crop."""
    array = photos["chelsea"]
    resized = np.asarray(
        PIL.Image.fromarray(array).resize((150, 100), PIL.Image.Resampling.BICUBIC)
    )
    expected = np.zeros((224, 160, 3), np.uint8)
    top, left = (224 - 100) // 2, (160 - 150) // 2
    expected[top : top + 100, left : left + 150] = resized
    static = pil_resize_crop(tf.constant(array), (100, 150), (224, 160)).numpy()
    np.testing.assert_array_equal(static, expected)
    fn = tf.function(
        lambda im, h, w: pil_resize_crop(im, (100, 150), (h, w)), input_signature=DYNAMIC
    )
    np.testing.assert_array_equal(fn(tf.constant(array), 224, 160).numpy(), expected)
    np.testing.assert_array_equal(fn(tf.constant(array), 61, 37).numpy(), resized[19:80, 56:93])


def test_processor_gray_rgba_and_small_photos(photos, hf_pil_processor_cls):
    """The LeViT transform (XLA kernels + fused normalize table) on L / RGBA / tiny inputs."""
    reference = hf_pil_processor_cls()
    ours = LevitImageProcessor()
    rgba = np.dstack([photos["astronaut"], photos["camera"][:512, :512]])
    for array in (photos["camera"], rgba, photos["coffee"][:3, :2], photos["coffee"][:1, :1]):
        image = PIL.Image.fromarray(array)
        ref = reference(image, do_convert_rgb=True, return_tensors="np")["pixel_values"]
        np.testing.assert_array_equal(ours(image)["pixel_values"], ref.transpose(0, 2, 3, 1))
