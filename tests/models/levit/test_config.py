"""LevitConfig: HF field names and defaults, presets, JSON round trip, validation."""

import json

import pytest

from levit_tf import PRESETS, LevitConfig
from levit_tf.models.levit.configuration_levit import canonical_preset_name


def test_defaults_are_hf_defaults():
    from transformers import LevitConfig as HFLevitConfig

    ours, theirs = LevitConfig().to_dict(), HFLevitConfig().to_dict()
    for field in ("image_size", "num_channels", "kernel_size", "stride", "padding", "patch_size",
                  "hidden_sizes", "num_attention_heads", "depths", "key_dim", "drop_path_rate",
                  "mlp_ratio", "attention_ratio", "initializer_range"):
        assert ours[field] == (list(theirs[field]) if isinstance(theirs[field], tuple)
                               else theirs[field]), field
    assert LevitConfig().id2label == HFLevitConfig().id2label


def test_hf_config_json_loads_unchanged(tmp_path):
    from transformers import LevitConfig as HFLevitConfig

    hf = HFLevitConfig(hidden_sizes=[128, 256, 384], num_attention_heads=[4, 6, 8],
                       depths=[2, 3, 4], num_labels=3, drop_path_rate=0)
    hf.save_pretrained(tmp_path)
    ours = LevitConfig.from_pretrained(tmp_path)
    assert ours.preset_name() == "levit-128S"
    assert ours.num_labels == 3 and ours.id2label[2] == "LABEL_2"
    # ...and ours loads back into transformers.
    back = HFLevitConfig.from_dict(ours.to_dict())
    assert list(back.depths) == [2, 3, 4]


def test_json_round_trip(tmp_path):
    config = LevitConfig.from_preset("levit-384")
    config.save_pretrained(tmp_path)
    again = LevitConfig.from_pretrained(tmp_path)
    assert again == config
    assert again.drop_path_rate == 0.1
    assert again.id2label[999] == config.id2label[999]
    assert json.loads(config.to_json_string())["model_type"] == "levit"


@pytest.mark.parametrize("name,expected", [
    ("levit-128S", "levit-128S"), ("facebook/levit-128S", "levit-128S"),
    ("levit_128s", "levit-128S"), ("levit_conv_256", "levit-256"),
    ("timm/levit_192.fb_dist_in1k", "levit-192"), ("resnet50", None)])
def test_preset_names(name, expected):
    assert canonical_preset_name(name) == expected


@pytest.mark.parametrize("preset", list(PRESETS))
def test_presets(preset):
    config = LevitConfig.from_preset(preset)
    assert config.preset_name() == preset
    assert config.num_labels == 1000
    assert config.stage_grids() == [(14, 14), (7, 7), (4, 4)]


def test_num_labels_override_replaces_labels():
    config = LevitConfig.from_preset("levit-128S", num_labels=5)
    assert config.num_labels == 5 and config.id2label[4] == "LABEL_4"


@pytest.mark.parametrize("fields,message", [
    (dict(depths=[2, 3]), "differ in length"),
    (dict(image_size=200), "multiple of patch_size"),
    (dict(hidden_sizes=[100, 256, 384]), "divide by 8"),
    (dict(num_labels=3, id2label={0: "a"}), "num_labels=3"),
    (dict(hidden_sizes="big"), "list of ints"),
])
def test_invalid_configs_name_the_field(fields, message):
    with pytest.raises(ValueError, match=message):
        LevitConfig(**fields)


def test_bad_config_file_names_the_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"config\.json"):
        LevitConfig.from_json_file(path)
    path.write_text(json.dumps({"model_type": "resnet"}))
    with pytest.raises(ValueError, match="model_type='resnet'"):
        LevitConfig.from_json_file(path)
