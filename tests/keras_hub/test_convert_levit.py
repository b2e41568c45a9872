"""``levit_tf.keras_hub.convert_levit`` (keras-hub's timm-converter shape) run the way keras-hub's
``TimmPresetLoader`` runs a converter, offline: a timm LeViT with random weights saved as a timm
hub directory (config.json + model.safetensors), read through keras-hub's ``SafetensorLoader``.
Logits within 1e-5 of timm's; every Keras variable and every checkpoint tensor used exactly
once."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.keras_hub.conftest import SKIP_REASON

pytest.importorskip("keras_hub", reason=SKIP_REASON)

LOGIT_TOLERANCE = 1e-5


def timm_directory(path, preset: str, conv: bool):
    """A timm hub-style directory of a randomized timm LeViT; returns the torch model."""
    import safetensors.torch

    from levit_tf.testing.torch_reference import timm_model

    model = timm_model(preset, conv=conv, seed=3)
    path.mkdir()
    safetensors.torch.save_file(model.state_dict(), path / "model.safetensors")
    cfg = dict(model.pretrained_cfg)
    (path / "config.json").write_text(json.dumps({
        "architecture": cfg["architecture"], "num_classes": model.num_classes,
        "num_features": model.num_features, "pretrained_cfg": cfg}))
    return model


@pytest.mark.parametrize("conv", [False, True], ids=["levit_128s", "levit_conv_128s"])
def test_timm_checkpoint_through_safetensor_loader(tmp_path, conv):
    import torch
    from keras_hub.src.utils.transformers.safetensor_utils import SafetensorLoader

    from levit_tf.keras_hub import LevitImageClassifier, LevitImageConverter, convert_levit
    from levit_tf.testing.torch_reference import nhwc, relative_error

    class RecordingLoader(SafetensorLoader):
        """keras-hub's loader, noting which variables and tensors each port_weight used."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.variables: list[str] = []
            self.keys: list[str] = []

        def port_weight(self, keras_variable, hf_weight_key, hook_fn=None):
            self.variables.append(keras_variable.path)
            self.keys.append(hf_weight_key)
            super().port_weight(keras_variable, hf_weight_key, hook_fn)

    directory = tmp_path / "timm"
    reference = timm_directory(directory, "levit-128S", conv)
    timm_config = json.loads((directory / "config.json").read_text())
    assert timm_config["architecture"] == ("levit_conv_128s" if conv else "levit_128s")

    # TimmPresetLoader.load_backbone / load_task, step by step
    backbone = convert_levit.backbone_cls(**convert_levit.convert_backbone_config(timm_config))
    with RecordingLoader(str(directory), prefix="") as loader:
        convert_levit.convert_weights(backbone, loader, timm_config)
        task = LevitImageClassifier(backbone, num_classes=timm_config["num_classes"])
        convert_levit.convert_head(task, loader, timm_config)

    assert sorted(loader.variables) == sorted(v.path for v in task.weights)
    assert len(set(loader.variables)) == len(loader.variables)
    tensors = [k for k in reference.state_dict() if not k.endswith("num_batches_tracked")]
    assert sorted(loader.keys) == sorted(tensors)

    pixels = np.random.RandomState(0).standard_normal((2, 3, 224, 224)).astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(pixels)).numpy()
    error = relative_error(np.asarray(task(nhwc(pixels))), expected)
    assert error <= LOGIT_TOLERANCE, f"relative logit error {error:.2e}"
    # the converter keras-hub would build from pretrained_cfg: LeViT's 224 bicubic
    cfg = timm_config["pretrained_cfg"]
    converter = LevitImageConverter(image_size=cfg["input_size"][1:], mean=cfg["mean"],
                                    std=cfg["std"], interpolation=cfg["interpolation"])
    assert converter.image_size == (224, 224)


def test_unknown_architecture_is_one_error():
    from levit_tf.keras_hub import convert_levit

    with pytest.raises(ValueError, match="no LeViT converter for timm architecture 'levit_999'"):
        convert_levit.convert_backbone_config({"architecture": "levit_999"})
