"""One block plan builds both models; folding pairs blocks by plan entry; one rebuild helper."""

import numpy as np
import pytest

from levit_tf import (
    LevitConfig,
    LevitForImageClassification,
    LevitForImageClassificationWithTeacher,
)
from levit_tf.models.levit.block_plan import (
    ATTENTION,
    MLP,
    SUBSAMPLE_ATTENTION,
    SUBSAMPLE_MLP,
    block_plan,
)
from levit_tf.models.levit.inference import LevitForInference, optimize_for_inference
from levit_tf.models.levit.layers import check_block, model_blocks, stages_from_config
from levit_tf.models.levit.modeling_levit import rebuild
from levit_tf.testing.models import SMALL, randomize


def test_plan_of_levit_128s_follows_hf_down_ops():
    config = LevitConfig.from_preset("levit-128S")  # depths 2, 3, 4; widths 128, 256, 384
    plan = block_plan(config)
    assert len(plan) == 2 * sum(config.depths) + 2 * (config.num_stages - 1)
    assert [b.kind for b in plan[:6]] == [ATTENTION, MLP, ATTENTION, MLP, SUBSAMPLE_ATTENTION,
                                          SUBSAMPLE_MLP]
    down, down_mlp = plan[4], plan[5]
    assert (down.stage, down.index, down.grid, down.stride, down.residual) == (
        0, 4, (14, 14), 2, False)
    assert (down.input_dim, down.output_dim, down.key_dim, down.num_heads,
            down.attention_ratio) == (128, 256, 16, 128 // 16, 4)
    assert (down_mlp.grid, down_mlp.hidden_dim, down_mlp.residual) == ((7, 7), 256 * 2, True)
    assert [b.key for b in plan if b.stage == 2] == [(2, i) for i in range(8)]


@pytest.mark.parametrize("overrides", [{}, {"depths": [2, 1, 3], "image_size": [96, 64]}])
def test_training_stages_and_folded_graph_are_built_from_the_plan(overrides):
    config = LevitConfig(**{**SMALL, **overrides})
    plan = block_plan(config)
    refs = model_blocks(stages_from_config(config))
    assert [ref.key for ref in refs] == [spec.key for spec in plan]
    for spec, ref in zip(plan, refs, strict=True):
        check_block(spec, ref)
    folded = LevitForInference(config)
    assert folded.plan == tuple(plan)
    for spec, block in zip(plan, folded.blocks, strict=True):
        if spec.is_attention:
            assert (block.key_dim, block.num_heads, block.attention_ratio, block.grid,
                    block.stride) == (spec.key_dim, spec.num_heads, spec.attention_ratio,
                                      spec.grid, spec.stride)
        else:
            assert (block.hidden_size, block.hidden_dim) == (spec.output_dim, spec.hidden_dim)


def test_folding_refuses_a_model_of_another_plan():
    model = LevitForImageClassification(LevitConfig(**{**SMALL, "depths": [1, 2, 1]}))
    folded = LevitForInference(LevitConfig(**SMALL))
    with pytest.raises(ValueError, match="blocks"):
        folded.load_from(model)
    other = LevitForImageClassification(LevitConfig(**{**SMALL, "key_dim": [8, 4, 8]}))
    with pytest.raises(ValueError, match=r"stages\[1\].blocks\[0\]"):
        folded.load_from(other)


def test_rebuild_copies_by_path_and_checks_shapes():
    model = randomize(LevitForImageClassificationWithTeacher(LevitConfig(**SMALL)), seed=8)
    model.levit.trainable = False
    pixels = np.random.default_rng(0).normal(size=(1, 96, 96, 3)).astype(np.float32)
    same = rebuild(model, LevitConfig(**{**SMALL, "drop_path_rate": 0.1}))
    assert same is not model and same.name == model.name and not same.levit.trainable
    np.testing.assert_array_equal(same(pixels)["logits"], model(pixels)["logits"])
    backbone = rebuild(model, LevitConfig(**{**SMALL, "num_labels": 3}),
                       model_class=LevitForImageClassification, backbone_only=True)
    np.testing.assert_array_equal(optimize_for_inference(backbone, "normalized").blocks[0]
                                  .projection.kernel,
                                  optimize_for_inference(model).blocks[0].projection.kernel)
    with pytest.raises(ValueError, match="variables differ"):
        rebuild(model, LevitConfig(**{**SMALL, "depths": [1, 1, 2]}))
    with pytest.raises(ValueError, match="does not fit"):
        rebuild(model, transform=lambda old, new: np.zeros((1,)))
