"""Importing timm and transformers beside the CPU-only torch wheel.

Both import torchvision when it is installed (timm always needs it). The only torchvision 0.28.0
wheel (the release built against torch 2.13.0) is a CUDA build whose compiled ops library cannot
load beside CPU torch; its Python side then fails on ``register_fake("torchvision::nms")`` for an
operator that was never defined. Declaring the two operator schemas it registers fake kernels for
lets its pure-Python modules import; the compiled kernels (nms, roi_align, ...) stay unavailable,
and neither LeViT nor these tests use them. Nothing of timm, transformers or LeViT is replaced.
"""

from __future__ import annotations

_library = None


def make_torchvision_importable() -> None:
    """Declares torchvision::nms / qnms if no working torchvision build defined them."""
    global _library
    import torch

    if _library is not None:
        return
    try:
        torch.ops.torchvision.nms  # noqa: B018 - defined by a working torchvision build
        return
    except (AttributeError, RuntimeError):
        pass
    _library = torch.library.Library("torchvision", "DEF")
    for op in ("nms", "qnms"):
        _library.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")


def import_timm():
    """The real ``timm`` package."""
    make_torchvision_importable()
    import timm

    return timm
