"""Fixtures of the resolution tests: randomized timm / HF references at 224 px."""

from __future__ import annotations

import pytest
import safetensors.torch
import torch

from levit_tf.testing.torch_reference import hf_model, timm_model


@pytest.fixture(scope="session")
def timm_reference() -> torch.nn.Module:
    """timm levit_128s at 224 with every weight and bias table randomized."""
    return timm_model("levit-128S", seed=5)


@pytest.fixture(scope="session")
def timm_checkpoint(timm_reference, tmp_path_factory):
    path = tmp_path_factory.mktemp("timm") / "levit_128s.safetensors"
    safetensors.torch.save_file(timm_reference.state_dict(), path)
    return path


@pytest.fixture(scope="session")
def hf_reference() -> torch.nn.Module:
    return hf_model("levit-128S", seed=6)

