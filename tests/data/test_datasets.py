"""Dataset builders: image folder, numpy arrays, TFDS (mocked offline), train transform."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import tensorflow as tf

from levit_tf.data import (
    BadImageError,
    TrainAugment,
    array_dataset,
    image_folder_dataset,
    list_image_folder,
    tfds_dataset,
)
from levit_tf.preprocessing import LevitImageProcessor


@pytest.fixture()
def folder(tmp_path, photos):
    """root/<class>/ with JPEG, PNG (gray, RGBA), palette BMP, a non-image and a truncated JPEG."""
    root = tmp_path / "images"
    for name in ("zebra", "apple", "mango"):
        (root / name).mkdir(parents=True)
    PIL.Image.fromarray(photos["chelsea"]).save(root / "apple" / "a.jpg", quality=92)
    PIL.Image.fromarray(photos["camera"]).save(root / "apple" / "b.png")
    PIL.Image.fromarray(photos["logo_rgba"]).save(root / "mango" / "c.png")
    PIL.Image.fromarray(photos["coffee"]).convert("P").save(root / "zebra" / "d.bmp")
    (root / "zebra" / "readme.txt").write_text("hello")
    (root / "mango" / "broken.jpg").write_bytes((root / "apple" / "a.jpg").read_bytes()[:3000])
    (root / ".hidden").mkdir()
    return root


def test_folder_listing_sorted_classes(folder):
    paths, labels, classes = list_image_folder(folder)
    assert classes == ["apple", "mango", "zebra"]
    assert [p.rsplit("/", 1)[-1] for p in paths] == [
        "a.jpg",
        "b.png",
        "broken.jpg",
        "c.png",
        "d.bmp",
        "readme.txt",
    ]
    assert labels == [0, 0, 1, 1, 2, 2]


def test_folder_dataset_eval_matches_processor_and_names_bad_files(folder):
    with pytest.warns(UserWarning) as record:
        ds = image_folder_dataset(folder, batch_size=8)
    messages = " ".join(str(w.message) for w in record)
    assert "broken.jpg" in messages and "readme.txt" in messages
    assert ds.class_names == ["apple", "mango", "zebra"]
    images, labels = next(iter(ds))
    assert images.shape == (4, 224, 224, 3) and images.dtype == tf.float32
    assert labels.dtype == tf.int32 and labels.numpy().tolist() == [0, 0, 1, 2]
    processor = LevitImageProcessor()
    expected = processor([PIL.Image.open(p) for p in ds.file_paths])["pixel_values"]
    np.testing.assert_array_equal(images.numpy(), expected)  # decode + transform are PIL-exact


def test_folder_dataset_raise_names_file(folder):
    with pytest.raises(BadImageError, match=r"broken\.jpg|readme\.txt"):
        image_folder_dataset(folder, on_error="raise")


def test_folder_dataset_image_size_and_cache(folder):
    with pytest.warns(UserWarning):
        ds = image_folder_dataset(folder, image_size=160, batch_size=None, cache=True)
    first = [x.numpy() for x, _ in ds]
    second = [x.numpy() for x, _ in ds]
    assert first[0].shape == (160, 160, 3)
    np.testing.assert_array_equal(np.stack(first), np.stack(second))


@pytest.mark.slow
def test_train_pipeline_is_seeded_and_deterministic(folder):
    def run(seed: int) -> tf.data.Dataset:
        with pytest.warns(UserWarning):
            return image_folder_dataset(
                folder, training=True, batch_size=4, seed=seed, image_size=96
            )

    ds = run(7)
    epoch1 = next(iter(ds))
    epoch2 = next(iter(ds))
    again = next(iter(run(7)))
    other = next(iter(run(8)))
    assert epoch1[0].shape == (4, 96, 96, 3)
    np.testing.assert_array_equal(epoch1[0].numpy(), again[0].numpy())
    np.testing.assert_array_equal(epoch1[1].numpy(), again[1].numpy())
    assert not np.array_equal(epoch1[0].numpy(), epoch2[0].numpy())
    assert not np.array_equal(epoch1[0].numpy(), other[0].numpy())


def test_train_randaugment_and_mixup(folder):
    augment = TrainAugment(rand_augment=(2, 0.5), mixup_alpha=0.4)
    with pytest.warns(UserWarning):
        ds = image_folder_dataset(
            folder, training=True, batch_size=4, seed=1, image_size=64, augment=augment
        )
    images, labels = next(iter(ds))
    assert images.shape == (4, 64, 64, 3) and np.isfinite(images.numpy()).all()
    assert labels.shape == (4, 3) and labels.dtype == tf.float32
    np.testing.assert_allclose(labels.numpy().sum(axis=1), 1.0, rtol=1e-5)


def test_array_dataset_ndarray_and_ragged_list(photos):
    batch = np.stack([photos["chelsea"], photos["cat"]])
    ds = array_dataset(batch, [3, 4], batch_size=2)
    images, labels = next(iter(ds))
    np.testing.assert_array_equal(images.numpy(), LevitImageProcessor()(batch)["pixel_values"])
    assert labels.numpy().tolist() == [3, 4]
    mixed = [photos["coffee"], photos["moon"], photos["logo_rgba"], photos["horse_binary"] > 0]
    ds = array_dataset(mixed, [0, 1, 2, 3], batch_size=4, image_size=128)
    images, _ = next(iter(ds))
    assert images.shape == (4, 128, 128, 3)
    expected = LevitImageProcessor(size={"shortest_edge": 128}, crop_size=128)(photos["moon"])
    np.testing.assert_array_equal(images.numpy()[1], expected["pixel_values"][0])
    with pytest.raises(ValueError, match="labels"):
        array_dataset(batch, [1, 2, 3])


def test_tfds_dataset_with_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=5):
        ds = tfds_dataset("mnist", split="train", batch_size=5, image_size=32)
        images, labels = next(iter(ds))
    assert images.shape == (5, 32, 32, 3) and images.dtype == tf.float32
    assert labels.dtype == tf.int32 and ((labels >= 0) & (labels < 10)).numpy().all()
    assert ds.class_names is not None and len(ds.class_names) == 10
