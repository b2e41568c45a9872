"""Bad checkpoints fail with one message naming the file and the keys, and write nothing."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import safetensors.torch
import torch

from levit_tf.converters import ConversionError, convert_to_file, load_pretrained
from levit_tf.testing.torch_reference import hf_model, timm_model


@pytest.fixture(scope="module")
def timm_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("timm") / "levit_128s.safetensors"
    safetensors.torch.save_file(timm_model("levit-128S", seed=7).state_dict(), path)
    return path


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "levit_tf.cli", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=300)


def test_random_bytes(tmp_path):
    path = tmp_path / "model.pth"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ConversionError, match=r"model\.pth: not a PyTorch checkpoint"):
        load_pretrained(path)


def test_truncated_safetensors(tmp_path, timm_file):
    path = tmp_path / "cut.safetensors"
    path.write_bytes(timm_file.read_bytes()[:100_000])
    with pytest.raises(ConversionError, match=r"cut\.safetensors: not a valid safetensors"):
        load_pretrained(path)


def test_other_architecture(tmp_path):
    other = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8))
    torch.save(other.state_dict(), tmp_path / "resnet.pth")
    with pytest.raises(ConversionError, match=r"not a LeViT checkpoint.*'0\.weight'"):
        load_pretrained(tmp_path / "resnet.pth")


def test_missing_path(tmp_path):
    with pytest.raises(ConversionError, match="no such file or directory"):
        load_pretrained(tmp_path / "nope.safetensors")


def test_config_that_does_not_match_the_weights(tmp_path):
    reference = hf_model("levit-128S", seed=8)
    reference.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config.update(num_attention_heads=[4, 8, 12], depths=[4, 4, 4])  # LeViT-128's
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConversionError) as caught:
        load_pretrained(tmp_path)
    message = str(caught.value)
    # the config is named as the culprit, each differing key once, with what the weights have
    assert "config.json does not match model.safetensors (levit-128S weights)" in message
    assert "num_attention_heads [4, 8, 12] (the weights have [4, 6, 8])" in message
    assert "depths [4, 4, 4] (the weights have [2, 3, 4])" in message
    assert message.count("depths") == 1 and "\n" not in message
    assert "Fix or remove config.json" in message


def test_unexpected_key_is_named(tmp_path, timm_file):
    from safetensors.numpy import load_file, save_file

    state = load_file(str(timm_file))
    state["stages.0.blocks.0.attn.extra_scale"] = np.ones(3, np.float32)
    save_file(state, tmp_path / "extra.safetensors")
    with pytest.raises(ConversionError, match=r"stages\.0\.blocks\.0\.attn\.extra_scale"):
        load_pretrained(tmp_path / "extra.safetensors")


def test_wrong_bias_index_is_rejected(tmp_path):
    from levit_tf.testing.torch_reference import save_fb_checkpoint

    path = save_fb_checkpoint(hf_model("levit-128S", seed=9), tmp_path / "fb.pth")
    checkpoint = torch.load(path, weights_only=True)
    index = checkpoint["model"]["blocks.0.m.attention_bias_idxs"]
    checkpoint["model"]["blocks.0.m.attention_bias_idxs"] = index.flip(0)
    torch.save(checkpoint, path)
    with pytest.raises(ConversionError, match=r"attention_bias_idxs differ.*blocks\.0\.m\."):
        load_pretrained(path)


def test_failed_conversion_leaves_no_file(tmp_path):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ConversionError):
        convert_to_file(bad, tmp_path / "out.keras")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.bin"]


def test_class_override_drops_distillation_head(timm_file):
    from levit_tf import LevitForImageClassification, LevitModel

    model = load_pretrained(timm_file, model_class=LevitForImageClassification)
    assert type(model) is LevitForImageClassification
    assert type(load_pretrained(timm_file, model_class=LevitModel)) is LevitModel


def test_new_label_count_keeps_the_backbone(timm_file):
    with pytest.raises(ConversionError, match="shape mismatch"):
        load_pretrained(timm_file, num_labels=10)
    model = load_pretrained(timm_file, num_labels=10, ignore_mismatched_sizes=True)
    reference = load_pretrained(timm_file)
    assert model.config.num_labels == 10 and model.classifier.linear.kernel.shape == (384, 10)
    np.testing.assert_array_equal(model.levit.stages[2].blocks[0].module.attention_biases,
                                  reference.levit.stages[2].blocks[0].module.attention_biases)


@pytest.mark.slow
def test_safetensors_convert_without_torch(tmp_path, timm_file):
    script = textwrap.dedent(f"""
        import sys
        class BlockTorch:
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("torch is blocked in this test")
        sys.meta_path.insert(0, BlockTorch())
        from levit_tf.converters import convert_to_file
        convert_to_file({str(timm_file)!r}, {str(tmp_path / "out.keras")!r})
        assert "torch" not in sys.modules
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "out.keras").is_file()


@pytest.mark.slow
def test_cli_errors_are_one_message_without_traceback(tmp_path):
    bad = tmp_path / "random.pth"
    bad.write_bytes(np.random.default_rng(1).bytes(1000))
    result = run_cli("convert", str(bad), str(tmp_path / "out.keras"))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "random.pth: not a PyTorch checkpoint" in result.stderr
    assert not (tmp_path / "out.keras").exists()
    assert run_cli("convert").returncode == 2  # usage error


@pytest.mark.slow
def test_cli_converts_a_hub_id_from_the_offline_cache(tmp_path):
    """`levit-tf convert facebook/levit-128S`: the real hub path, against a local HF cache."""
    reference = hf_model("levit-128S", seed=10)
    snapshot = tmp_path / "cache" / "models--facebook--levit-128S" / "snapshots" / ("a" * 40)
    reference.save_pretrained(snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("a" * 40)
    pixels = np.random.default_rng(2).normal(size=(1, 3, 224, 224)).astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(pixels)).logits.numpy()

    output = tmp_path / "levit-128S.keras"
    result = run_cli("convert", "facebook/levit-128S", str(output),
                     env={"HF_HUB_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "levit-128S" in result.stdout and "7,816,706 parameters" in result.stdout
    model = load_pretrained(output)
    logits = np.asarray(model(np.transpose(pixels, (0, 2, 3, 1)))["logits"])
    assert np.max(np.abs(logits - expected)) / np.max(np.abs(expected)) <= 1e-5

    missing = run_cli("convert", "facebook/levit-999", str(tmp_path / "x.keras"),
                      env={"HF_HUB_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"})
    assert missing.returncode == 1 and "facebook/levit-999" in missing.stderr
    assert "Traceback" not in missing.stderr
