"""Datasets from TensorFlow Datasets (``tensorflow-datasets``) by name."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from levit_tf.data.pipeline import build_pipeline


def tfds_dataset(
    name: str,
    split: str = "train",
    *,
    data_dir: str | None = None,
    image_key: str = "image",
    label_key: str = "label",
    image_size: int | tuple[int, int] = 224,
    training: bool = False,
    batch_size: int | None = 32,
    seed: int | None = None,
    shuffle_buffer: int | None = 10_000,
    download: bool = False,
    **pipeline_kwargs: Any,
) -> tf.data.Dataset:
    """(float32 (S, S, 3), int32 label) pipeline over a TFDS dataset split ((H, W, 3) for an
    ``image_size`` (H, W)).

    TFDS decodes images to uint8 (H, W, 1|3|4); they get the same PIL-exact eval
    transform (or train augmentation) as files. ``num_classes`` is read from the
    dataset's label feature when available. The dataset gets a ``class_names``
    attribute (label feature names, or None).
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "tfds_dataset needs tensorflow-datasets (pip install tensorflow-datasets)"
        ) from err
    source, info = tfds.load(
        name,
        split=split,
        data_dir=data_dir,
        with_info=True,
        download=download,
        shuffle_files=training,
        read_config=tfds.ReadConfig(shuffle_seed=seed) if seed is not None else None,
    )
    features = info.features
    for key in (image_key, label_key):
        if key not in features:
            raise KeyError(
                f"TFDS dataset {name!r} has no feature {key!r}; features: {list(features)}"
            )
    class_names = getattr(features[label_key], "names", None)
    if class_names:
        pipeline_kwargs.setdefault("num_classes", len(class_names))
    source = source.map(lambda ex: (ex[image_key], ex[label_key]))
    ds = build_pipeline(
        source,
        None,
        image_size=image_size,
        training=training,
        batch_size=batch_size,
        seed=seed,
        shuffle_buffer=shuffle_buffer if training else None,
        **pipeline_kwargs,
    )
    ds.class_names = class_names
    return ds
