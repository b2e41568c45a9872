"""LevitImageProcessor API: inputs, outputs, config round trips, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import PIL.Image
import pytest
import tensorflow as tf

from levit_tf.preprocessing import LevitFeatureExtractor, LevitImageProcessor, resize_output_size

HF_LEVIT_CONFIG = {  # the facebook/levit-128S preprocessor_config.json format (int sizes)
    "crop_size": 224,
    "do_center_crop": True,
    "do_normalize": True,
    "do_resize": True,
    "feature_extractor_type": "LevitFeatureExtractor",
    "image_mean": [0.485, 0.456, 0.406],
    "image_std": [0.229, 0.224, 0.225],
    "resample": 3,
    "size": 224,
}


def test_defaults_match_hf(hf_pil_processor_cls):
    ours = LevitImageProcessor().to_dict()
    ref = hf_pil_processor_cls().to_dict()
    for key in ("do_resize", "size", "resample", "do_center_crop", "crop_size", "do_rescale",
                "rescale_factor", "do_normalize", "image_mean", "image_std"):  # fmt: skip
        assert ours[key] == (list(ref[key]) if isinstance(ref[key], tuple) else ref[key]), key


@pytest.mark.parametrize(
    ("hw", "expected"),
    [
        ((480, 640), (256, 341)),
        ((640, 480), (341, 256)),
        ((30, 600), (256, 5120)),
        ((7, 5), (358, 256)),
    ],
)
def test_resize_size_arithmetic(hw, expected):
    assert resize_output_size(*hw, {"shortest_edge": 224}) == expected


def test_batch_of_mixed_inputs_and_layouts(photos):
    processor = LevitImageProcessor()
    images = [
        PIL.Image.fromarray(photos["chelsea"]),
        photos["camera"],  # (H, W) gray
        photos["logo_rgba"],  # RGBA -> alpha dropped
        tf.constant(photos["coffee"]),
        photos["camera"][:, :, None],  # (H, W, 1)
    ]
    out = processor(images)["pixel_values"]
    assert isinstance(out, np.ndarray) and out.shape == (5, 224, 224, 3)
    np.testing.assert_array_equal(out[1], out[4])
    np.testing.assert_array_equal(
        out[2], processor(photos["logo_rgba"][:, :, :3])["pixel_values"][0]
    )
    first = processor(images, data_format="channels_first", return_tensors="tf")["pixel_values"]
    assert isinstance(first, tf.Tensor) and first.shape == (5, 3, 224, 224)
    np.testing.assert_array_equal(first.numpy().transpose(0, 2, 3, 1), out)
    batch = np.stack([photos["chelsea"], photos["cat"]])
    assert processor(batch)["pixel_values"].shape == (2, 224, 224, 3)


def test_output_size_comes_from_config(photos):
    processor = LevitImageProcessor(
        size={"shortest_edge": 160}, crop_size={"height": 160, "width": 128}
    )
    out = processor(photos["rocket"])["pixel_values"]
    assert out.shape == (1, 160, 128, 3)
    assert processor.tf_preprocess(tf.constant(photos["rocket"])).shape == (160, 128, 3)
    no_crop = processor(photos["rocket"], do_center_crop=False)["pixel_values"]
    assert no_crop.shape == (1, 182, 272, 3)  # int(256/224*160) = 182, int(182*640/427) = 272


def test_matches_hf_for_non_default_config(photos, hf_pil_processor_cls):
    kwargs = {"size": {"shortest_edge": 160}, "crop_size": {"height": 150, "width": 170}}
    ref = hf_pil_processor_cls(**kwargs)
    ours = LevitImageProcessor(**kwargs)
    image = PIL.Image.fromarray(photos["coins"])
    expected = ref(image, do_convert_rgb=True, return_tensors="np")["pixel_values"]
    np.testing.assert_array_equal(ours(image)["pixel_values"], expected.transpose(0, 2, 3, 1))


@pytest.mark.parametrize(
    ("images", "error", "match"),
    [
        (np.zeros((8, 8, 3), np.float32), TypeError, "uint8"),
        (np.zeros((3, 8, 8), np.uint8), ValueError, "channels-first"),
        (np.zeros((8, 8, 5), np.uint8), ValueError, "channels"),
        ("cat.jpg", TypeError, "unsupported image type"),
        ([], ValueError, "empty"),
        (tf.zeros((8, 8, 3), tf.float32), TypeError, "uint8"),
    ],
)
def test_bad_inputs_raise_clear_errors(images, error, match):
    with pytest.raises(error, match=match):
        LevitImageProcessor()(images)


def test_bad_config_raises():
    with pytest.raises(ValueError, match="resample"):
        LevitImageProcessor(resample=1)
    with pytest.raises(ValueError, match="crop_size"):
        LevitImageProcessor(crop_size={"shortest_edge": 3})
    with pytest.raises(ValueError, match="data_format"):
        LevitImageProcessor()(np.zeros((8, 8, 3), np.uint8), data_format="NCHW")


def test_feature_extractor_is_deprecated_alias(photos):
    with pytest.warns(FutureWarning, match="LevitImageProcessor"):
        extractor = LevitFeatureExtractor()
    assert isinstance(extractor, LevitImageProcessor)
    np.testing.assert_array_equal(
        extractor(photos["cat"])["pixel_values"],
        LevitImageProcessor()(photos["cat"])["pixel_values"],
    )


def test_from_pretrained_hf_config_and_save_round_trip(tmp_path, hf_pil_processor_cls):
    (tmp_path / "hub").mkdir()
    (tmp_path / "hub" / "preprocessor_config.json").write_text(json.dumps(HF_LEVIT_CONFIG))
    processor = LevitImageProcessor.from_pretrained(tmp_path / "hub")
    assert processor.config.size == {"shortest_edge": 224}
    assert processor.config.crop_size == {"height": 224, "width": 224}
    saved = processor.save_pretrained(tmp_path / "out")
    assert saved == [str(tmp_path / "out" / "preprocessor_config.json")]
    again = LevitImageProcessor.from_pretrained(tmp_path / "out")
    assert again.to_dict() == processor.to_dict()
    hf = hf_pil_processor_cls.from_pretrained(str(tmp_path / "out"))
    assert hf.size == {"shortest_edge": 224} or hf.size.shortest_edge == 224
    assert list(hf.image_mean) == list(processor.config.image_mean)
    assert hf.resample == 3 and hf.do_center_crop is True
    custom = LevitImageProcessor(crop_size={"height": 192, "width": 192}, image_std=[0.5, 0.5, 0.5])
    custom.save_pretrained(tmp_path / "custom")
    loaded = LevitImageProcessor.from_pretrained(tmp_path / "custom", do_normalize=False)
    assert loaded.config.crop_size == {"height": 192, "width": 192}
    assert loaded.config.image_std == (0.5, 0.5, 0.5) and loaded.config.do_normalize is False


def test_from_pretrained_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"preprocessor_config\.json"):
        LevitImageProcessor.from_pretrained(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        LevitImageProcessor.from_pretrained(tmp_path)


def test_from_pretrained_offline_hf_cache(tmp_path):
    """A hub id resolves through hf_hub_download from an HF_HUB_CACHE layout, offline."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "cache" / "models--facebook--levit-128S"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    config = {**HF_LEVIT_CONFIG, "crop_size": 200}
    (snapshot / "preprocessor_config.json").write_text(json.dumps(config))
    script = textwrap.dedent(
        """
        from levit_tf.preprocessing.image_processor import LevitImageProcessor
        p = LevitImageProcessor.from_pretrained("facebook/levit-128S")
        print("CROP", p.config.crop_size["height"], p.config.crop_size["width"])
        """
    )
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "CROP 200 200" in result.stdout
