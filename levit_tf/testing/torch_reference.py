"""Reference PyTorch LeViT models with every weight randomized, saved in each checkpoint layout.

PyTorch LeViT zero-initializes residual BN gammas and attention biases, which would hide
conversion errors; here every parameter and every BN statistic is drawn at random first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from levit_tf.models.levit.configuration_levit import PRESETS
from levit_tf.testing.torch_compat import import_timm, make_torchvision_importable

make_torchvision_importable()

TIMM_NAMES = {"levit-128S": "levit_128s", "levit-128": "levit_128", "levit-192": "levit_192",
              "levit-256": "levit_256", "levit-384": "levit_384"}


def randomize_(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Redraws every parameter and BN statistic in place; returns the model in eval mode."""
    generator = torch.Generator().manual_seed(seed)

    def draw(shape, low=None, high=None, std=None):
        if std is not None:
            return torch.randn(shape, generator=generator) * std
        return torch.rand(shape, generator=generator) * (high - low) + low

    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                size = module.num_features
                module.weight.copy_(draw(size, 0.5, 1.5))
                module.bias.copy_(draw(size, std=0.2))
                module.running_mean.copy_(draw(size, std=0.2))
                module.running_var.copy_(draw(size, 0.5, 2.0))
            elif isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
                fan_in = module.weight[0].numel()
                module.weight.copy_(draw(module.weight.shape, std=fan_in**-0.5))
                if module.bias is not None:
                    module.bias.copy_(draw(module.bias.shape, std=0.2))
            if hasattr(module, "attention_biases") and name:
                module.attention_biases.copy_(draw(module.attention_biases.shape, std=1.0))
    return model.eval()


def hf_config(preset: str, num_labels: int = 1000):
    from transformers import LevitConfig as HFLevitConfig

    fields = {k: v for k, v in PRESETS[preset].items() if k != "drop_path_rate"}
    return HFLevitConfig(**fields, drop_path_rate=0, num_labels=num_labels)


def hf_model(preset: str, teacher: bool = True, num_labels: int = 1000, seed: int = 0):
    import transformers

    cls = (transformers.LevitForImageClassificationWithTeacher if teacher
           else transformers.LevitForImageClassification)
    return randomize_(cls(hf_config(preset, num_labels)), seed)


def timm_model(preset: str, conv: bool = False, seed: int = 0):
    timm = import_timm()
    name = TIMM_NAMES[preset].replace("levit_", "levit_conv_") if conv else TIMM_NAMES[preset]
    return randomize_(timm.create_model(name, pretrained=False), seed)


def state_numpy(model: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}


def hf_bias_index_buffers(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The ``attention_bias_idxs`` buffers that pre-v5 transformers saved in checkpoints."""
    return {f"{name}.attention_bias_idxs": module.attention_bias_idxs.clone()
            for name, module in model.named_modules() if hasattr(module, "attention_bias_idxs")}


def fb_bias_index(resolution: int, stride: int, resolution_out: int) -> torch.Tensor:
    """facebookresearch's construction: offsets numbered by first appearance."""
    points = [(i, j) for i in range(resolution) for j in range(resolution)]
    queries = [(i, j) for i in range(resolution_out) for j in range(resolution_out)]
    offsets: dict[tuple[int, int], int] = {}
    index = []
    for qy, qx in queries:
        for ky, kx in points:
            offset = (abs(qy * stride - ky), abs(qx * stride - kx))
            offsets.setdefault(offset, len(offsets))
            index.append(offsets[offset])
    return torch.tensor(index, dtype=torch.long).view(len(queries), len(points))


def fb_state_dict(hf: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The facebookresearch ``levit.py`` layout of an HF teacher model's weights.

    facebookresearch numbers the stem convs 0, 2, 4, 6 (Hardswish between), keeps one flat
    ``blocks`` list in HF's order (residual blocks wrap their module in ``.m``, attention
    projections sit at ``proj.1``, the MLP's linears at ``m.0``/``m.2``, the subsample's query
    linear at ``q.1``), names conv/linear ``c``/``l`` and BN ``bn``, and stores the bias index.
    """
    out: dict[str, torch.Tensor] = {}

    def put_bn(prefix: str, bn: torch.nn.Module) -> None:
        for field in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            out[f"{prefix}.bn.{field}"] = getattr(bn, field).detach().clone()

    def put_linear_bn(prefix: str, module: torch.nn.Module) -> None:
        out[f"{prefix}.c.weight"] = module.linear.weight.detach().clone()
        put_bn(prefix, module.batch_norm)

    embeddings = hf.levit.patch_embeddings
    for k in range(4):
        layer = getattr(embeddings, f"embedding_layer_{k + 1}")
        out[f"patch_embed.{2 * k}.c.weight"] = layer.convolution.weight.detach().clone()
        put_bn(f"patch_embed.{2 * k}", layer.batch_norm)

    resolution = hf.config.image_size // hf.config.patch_size
    flat = 0
    for stage in hf.levit.encoder.stages:
        for layer in stage.layers:
            block = f"blocks.{flat}"
            module = getattr(layer, "module", layer)
            kind = type(module).__name__
            if kind == "LevitAttention":
                put_linear_bn(f"{block}.m.qkv", module.queries_keys_values)
                put_linear_bn(f"{block}.m.proj.1", module.projection)
                out[f"{block}.m.attention_biases"] = module.attention_biases.detach().clone()
                out[f"{block}.m.attention_bias_idxs"] = fb_bias_index(resolution, 1, resolution)
            elif kind == "LevitMLPLayer":
                put_linear_bn(f"{block}.m.0", module.linear_up)
                put_linear_bn(f"{block}.m.2", module.linear_down)
            elif kind == "LevitAttentionSubsample":
                resolution_out = (resolution - 1) // 2 + 1
                put_linear_bn(f"{block}.kv", module.keys_values)
                put_linear_bn(f"{block}.q.1", module.queries)
                put_linear_bn(f"{block}.proj.1", module.projection)
                out[f"{block}.attention_biases"] = module.attention_biases.detach().clone()
                out[f"{block}.attention_bias_idxs"] = fb_bias_index(resolution, 2, resolution_out)
                resolution = resolution_out
            else:
                raise TypeError(kind)
            flat += 1
    for hf_name, fb_name in (("classifier", "head"), ("classifier_distill", "head_dist")):
        head = getattr(hf, hf_name)
        put_bn(fb_name, head.batch_norm)
        out[f"{fb_name}.l.weight"] = head.linear.weight.detach().clone()
        out[f"{fb_name}.l.bias"] = head.linear.bias.detach().clone()
    return out


def save_fb_checkpoint(hf: torch.nn.Module, path: Path) -> Path:
    """A facebookresearch-style training checkpoint: {'model': ..., 'epoch': ...}."""
    torch.save({"model": fb_state_dict(hf), "epoch": 299}, path)
    return path


def nhwc(pixels_nchw: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(pixels_nchw, (0, 2, 3, 1)))


def relative_error(actual: np.ndarray, reference: np.ndarray) -> float:
    """max |actual - reference| / max |reference|."""
    return float(np.max(np.abs(actual - reference)) / np.max(np.abs(reference)))


def timm_hidden_states(model: torch.nn.Module, pixels: torch.Tensor) -> tuple[list[np.ndarray],
                                                                              np.ndarray]:
    """(HF-ordered hidden states, logits) of a timm LeViT.

    HF ends a stage with its shrinking attention, timm starts the next one with it, so HF's
    hidden states are: the stem's tokens, each later stage's ``downsample`` output, and the last
    stage's output.
    """
    captured: dict[str, torch.Tensor] = {}

    def keep(name: str):
        def hook(_module, _inputs, output):
            captured[name] = output
        return hook

    modules = {"stem": model.stem, "last": model.stages[-1]}
    for i, stage in enumerate(model.stages):
        if i:
            modules[f"down{i}"] = stage.downsample
    handles = [module.register_forward_hook(keep(name)) for name, module in modules.items()]
    try:
        with torch.no_grad():
            logits = model(pixels)
    finally:
        for handle in handles:
            handle.remove()

    def tokens(value: torch.Tensor) -> np.ndarray:
        if value.ndim == 4:  # NCHW (stem, and every stage of levit_conv_*)
            value = value.flatten(2).transpose(1, 2)
        return value.numpy()

    names = ["stem", *[f"down{i}" for i in range(1, len(model.stages))], "last"]
    return [tokens(captured[name]) for name in names], logits.numpy()
