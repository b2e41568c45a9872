"""One PyTorch SGD step on an HF LeViT: the reference of the training parity tests.

Modes: ``plain`` (cross-entropy on ``logits``), ``classic`` / ``hard`` (both heads: labels /
the teacher's labels on the distillation head, DeiT's mean of the two terms) and ``frozen``
(backbone in eval mode with no gradients, the head trains: Keras' ``freeze_backbone``).
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

RESIDUAL_GAIN = 0.2


def tame_residual_branches(model: torch.nn.Module) -> torch.nn.Module:
    """Scales the last BN gamma of every residual branch by RESIDUAL_GAIN.

    With every residual branch at full random gain, training-mode BN amplifies float32 rounding
    ~500x through the network (in PyTorch as much as in Keras); LeViT's own init sets this
    gamma to 0. Every weight stays random, the network trainable.
    """
    with torch.no_grad():
        for name, module in model.named_modules():
            if name.endswith(("projection.batch_norm", "linear_down.batch_norm")) and (
                    ".module." in name):
                module.weight.mul_(RESIDUAL_GAIN)
    return model


@dataclasses.dataclass
class TorchStep:
    """What one step gives: the loss, the gradients (an HF model holding them in place of its
    parameters, so the converters map them to Keras' layout), and the logits afterwards."""

    loss: float
    gradients: torch.nn.Module
    train_logits: np.ndarray
    eval_logits: np.ndarray


def torch_step(model: torch.nn.Module, pixels: np.ndarray, labels: np.ndarray,
               teacher_labels: np.ndarray, mode: str, lr: float) -> TorchStep:
    """One SGD step (lr, no momentum) of ``model`` in place on NCHW ``pixels``."""
    x, y, t = (torch.from_numpy(a) for a in (pixels, labels, teacher_labels))
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    if mode == "frozen":
        model.levit.eval()
        for parameter in model.levit.parameters():
            parameter.requires_grad_(False)
    out = model(x)
    if mode in ("plain", "frozen"):
        loss = F.cross_entropy(out.logits, y)
    else:
        distill_targets = y if mode == "classic" else t
        loss = (F.cross_entropy(out.cls_logits, y)
                + F.cross_entropy(out.distillation_logits, distill_targets)) / 2
    optimizer.zero_grad()
    loss.backward()
    gradients = copy.deepcopy(model)
    with torch.no_grad():
        for (_, grad_param), param in zip(gradients.named_parameters(), model.parameters(),
                                          strict=True):
            grad_param.copy_(param.grad if param.grad is not None else torch.zeros_like(param))
    optimizer.step()
    with torch.no_grad():
        model.eval()
        eval_logits = model(x).logits.numpy()
        model.train()
        if mode == "frozen":
            model.levit.eval()
        train_logits = model(x).logits.numpy()
    return TorchStep(float(loss.detach()), gradients, train_logits, eval_logits)


__all__ = ["RESIDUAL_GAIN", "TorchStep", "tame_residual_branches", "torch_step"]
