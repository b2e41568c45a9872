"""Model API: HF-style calls and outputs, heads, serialization, input checks."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from levit_tf import (
    LevitConfig,
    LevitForImageClassification,
    LevitForImageClassificationWithTeacher,
    LevitModel,
)
from levit_tf.models.levit.layers import (
    ConvBN,
    DenseBN,
    LevitAttention,
    LevitAttentionSubsample,
    LevitClassificationHead,
    LevitMLP,
    LevitPatchEmbeddings,
    LevitResidual,
    LevitStage,
)
from levit_tf.testing.models import SMALL, randomize


@pytest.fixture(scope="module")
def pixels() -> np.ndarray:
    return np.random.default_rng(1).normal(size=(2, 96, 96, 3)).astype(np.float32)


def test_hf_style_call_with_tf_tensors(pixels):
    model = randomize(LevitForImageClassificationWithTeacher(LevitConfig(**SMALL)))
    inputs = {"pixel_values": tf.constant(pixels)}
    out = model(**inputs)
    assert out["logits"].shape == (2, 7)
    np.testing.assert_allclose(out["logits"], (out["cls_logits"] + out["distillation_logits"]) / 2,
                               rtol=1e-6, atol=1e-6)
    predicted = int(tf.argmax(out["logits"][0]))
    assert model.config.id2label[predicted] == f"LABEL_{predicted}"


def test_levit_model_outputs(pixels):
    model = randomize(LevitModel(LevitConfig(**SMALL)))
    out = model(pixels, output_hidden_states=True)
    assert out["last_hidden_state"].shape == (2, 4, 64)  # 96 px -> 6x6 -> 3x3 -> 2x2 tokens
    np.testing.assert_allclose(out["pooler_output"], np.mean(out["last_hidden_state"], axis=1),
                               rtol=1e-6)
    assert [h.shape for h in out["hidden_states"]] == [(2, 36, 32), (2, 9, 48), (2, 4, 64),
                                                       (2, 4, 64)]
    assert "hidden_states" not in model(pixels)


def test_zero_labels_gives_features(pixels):
    model = LevitForImageClassification(LevitConfig(**{**SMALL, "num_labels": 0}))
    assert model(pixels)["logits"].shape == (2, 64)


@pytest.mark.parametrize("cls", [LevitModel, LevitForImageClassification,
                                 LevitForImageClassificationWithTeacher])
def test_keras_round_trip_is_exact(cls, pixels, tmp_path):
    model = randomize(cls(LevitConfig(**SMALL)))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is cls
    assert loaded.config == model.config
    for key, value in model(pixels).items():
        np.testing.assert_array_equal(loaded(pixels)[key], value)


def test_training_mode_uses_batch_statistics(pixels):
    model = randomize(LevitForImageClassification(LevitConfig(**SMALL)))
    eval_logits = model(pixels, training=False)["logits"]
    train_logits = model(pixels, training=True)["logits"]
    assert not np.allclose(eval_logits, train_logits)


def test_channels_first_input_gets_a_hint(pixels):
    model = LevitForImageClassification(LevitConfig(**SMALL))
    with pytest.raises(ValueError, match="channels-first"):
        model(np.transpose(pixels, (0, 3, 1, 2)))
    with pytest.raises(ValueError, match=r"\(batch, 96, 96, 3\)"):
        model(np.zeros((1, 32, 32, 3), np.float32))


def test_weights_follow_hf_structure():
    model = LevitForImageClassificationWithTeacher(LevitConfig.from_preset("levit-128S"))
    assert model.count_params() == 7_816_706  # HF LevitForImageClassificationWithTeacher 128S
    stage = model.levit.stages[0]
    assert len(stage.blocks) == 2 * 2 + 2  # depth 2 x (attention, MLP) + subsample + MLP
    assert isinstance(stage.blocks[4], LevitAttentionSubsample)
    assert stage.blocks[4].attention_biases.shape == (8, 196)


LAYERS = [
    (ConvBN(8), (1, 16, 16, 3)),
    (DenseBN(12), (2, 5, 6)),
    (LevitClassificationHead(4), (2, 6)),
    (LevitPatchEmbeddings(32), (1, 32, 32, 3)),
    (LevitAttention(16, 4, 2, 2, (3, 3)), (2, 9, 16)),
    (LevitAttentionSubsample(24, 4, 4, 4, (3, 3)), (2, 9, 16)),
    (LevitMLP(16, 32), (2, 9, 16)),
    (LevitResidual(LevitMLP(16, 32), drop_path_rate=0.2, seed=3), (2, 9, 16)),
    (LevitStage(16, 4, 1, 2, 2, 2, (3, 3), downsample_dim=24, downsample_key_dim=4,
                downsample_heads=4), (2, 9, 16)),
]


@pytest.mark.parametrize("layer,shape", LAYERS, ids=[type(layer).__name__ for layer, _ in LAYERS])
def test_layer_config_round_trip(layer, shape):
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    y = layer(x)
    assert tuple(y.shape) == tuple(layer.compute_output_shape(shape))
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(clone(x), y, rtol=1e-6)


def test_drop_path_drops_whole_samples():
    block = LevitResidual(LevitMLP(8, 16), drop_path_rate=0.5, seed=0)
    x = np.random.default_rng(0).normal(size=(64, 3, 8)).astype(np.float32)
    branch = np.asarray(block(x, training=True)) - x
    dropped = np.all(branch == 0, axis=(1, 2))
    assert 10 < dropped.sum() < 54  # about half the samples lose the branch
    np.testing.assert_allclose(block(x, training=False), x + block.module(x), rtol=1e-6)


def test_batch_norm_statistics_update_like_pytorch():
    import torch

    from levit_tf.models.levit.layers import TorchBatchNorm

    x = np.random.default_rng(3).normal(2.0, 3.0, size=(4, 5, 6)).astype(np.float32)
    ours = TorchBatchNorm()
    ours.build(x.shape)
    theirs = torch.nn.BatchNorm1d(6)
    out = ours(x, training=True)
    expected = theirs(torch.from_numpy(x).flatten(0, 1)).reshape(4, 5, 6)
    np.testing.assert_allclose(out, expected.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours.moving_mean, theirs.running_mean, rtol=1e-6)
    np.testing.assert_allclose(ours.moving_variance, theirs.running_var, rtol=1e-6)


@pytest.mark.parametrize("shape", [(4, 5, 6), (2, 7, 7, 6)])
def test_fused_batch_norm_training_matches_pytorch_with_gradients(shape):
    """TF's fused training BN (float32) against torch: running stats and gradients."""
    import torch

    from levit_tf.models.levit.layers import TorchBatchNorm

    rng = np.random.default_rng(4)
    x = rng.normal(2.0, 3.0, size=shape).astype(np.float32)
    upstream = rng.normal(size=shape).astype(np.float32)
    gamma = rng.normal(1.0, 0.3, size=6).astype(np.float32)
    beta = rng.normal(0.0, 0.3, size=6).astype(np.float32)
    ours = TorchBatchNorm()
    ours.build(shape)
    ours.gamma.assign(gamma)
    ours.beta.assign(beta)
    x_tf = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x_tf)
        loss = tf.reduce_sum(ours(x_tf, training=True) * upstream)
    grads = tape.gradient(loss, [x_tf, ours.gamma, ours.beta])

    theirs = torch.nn.BatchNorm1d(6)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(gamma))
        theirs.bias.copy_(torch.from_numpy(beta))
    x_torch = torch.from_numpy(x).reshape(-1, 6).requires_grad_()
    (theirs(x_torch) * torch.from_numpy(upstream).reshape(-1, 6)).sum().backward()
    np.testing.assert_allclose(ours.moving_mean, theirs.running_mean, rtol=1e-6)
    np.testing.assert_allclose(ours.moving_variance, theirs.running_var, rtol=1e-6)
    expected = [x_torch.grad.reshape(shape), theirs.weight.grad, theirs.bias.grad]
    for got, want in zip(grads, expected, strict=True):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-5)
