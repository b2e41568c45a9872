"""PyTorch references at a new resolution: the 224 model's bias tables resized with torch's own
``F.interpolate`` and copied into a timm / HF LeViT built at the new size
(tests/models/levit/resolution)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from levit_tf.testing.torch_compat import import_timm
from levit_tf.testing.torch_reference import hf_config


def torch_resize(table: torch.Tensor, grid: tuple[int, int], new_grid: tuple[int, int],
                 mode: str) -> torch.Tensor:
    """(heads, H*W) -> (heads, H'*W') with F.interpolate on the (heads, H, W) image."""
    image = table.detach().reshape(1, table.shape[0], *grid)
    out = F.interpolate(image, size=tuple(new_grid), mode=mode, align_corners=False)
    return out.reshape(table.shape[0], -1)


def timm_grids(model: torch.nn.Module) -> dict[str, tuple[int, int]]:
    """Key grid of every attention_biases parameter of a timm LeViT, by state-dict name."""
    return {f"{name}.attention_biases": tuple(module.resolution)
            for name, module in model.named_modules() if hasattr(module, "attention_biases")}


def timm_at(reference: torch.nn.Module, image_size: int | tuple[int, int],
            mode: str = "bicubic") -> torch.nn.Module:
    """timm levit_128s built for ``image_size`` holding ``reference``'s weights, bias tables
    resized by torch."""
    hw = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    model = import_timm().create_model("levit_128s", pretrained=False, img_size=hw)
    old, new = timm_grids(reference), timm_grids(model)
    state = {key: torch_resize(value, old[key], new[key], mode) if key in old else value
             for key, value in reference.state_dict().items()}
    model.load_state_dict(state)
    return model.eval()


def hf_grids(model: torch.nn.Module) -> dict[str, tuple[int, int]]:
    """Key grid of every attention_biases of an HF LeViT (square configs only)."""
    side = model.config.image_size // model.config.patch_size
    grids = {}
    for name, module in model.named_modules():
        if hasattr(module, "attention_biases"):
            grids[f"{name}.attention_biases"] = (side, side)
            if type(module).__name__ == "LevitAttentionSubsample":
                side = (side - 1) // 2 + 1
    return grids


def hf_at(reference: torch.nn.Module, image_size: int, mode: str = "bicubic") -> torch.nn.Module:
    """HF teacher model with ``LevitConfig(image_size=...)`` and torch-resized bias tables."""
    import transformers

    config = hf_config("levit-128S")
    config.image_size = image_size
    model = transformers.LevitForImageClassificationWithTeacher(config)
    old, new = hf_grids(reference), hf_grids(model)
    state = {key: torch_resize(value, old[key], new[key], mode) if key in old else value
             for key, value in reference.state_dict().items() if "attention_bias_idxs" not in key}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all("attention_bias_idxs" in key for key in missing), missing
    return model.eval()


def logits_of(model: torch.nn.Module, pixels_nchw: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        out = model(torch.from_numpy(pixels_nchw))
    return (out.logits if hasattr(out, "logits") else out).numpy()


__all__ = ["hf_at", "logits_of", "timm_at", "timm_grids", "torch_resize"]
