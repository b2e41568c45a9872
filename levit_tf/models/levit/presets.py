"""The released LeViT architectures by name: plain data, no imports (the CLIs, hub look-ups
and ``LevitConfig`` all read it)."""

from __future__ import annotations

from typing import Any

# The five released architectures (facebookresearch/LeViT `specification`, paper Table 1).
PRESETS: dict[str, dict[str, Any]] = {
    "levit-128S": dict(
        hidden_sizes=[128, 256, 384], num_attention_heads=[4, 6, 8], depths=[2, 3, 4],
        key_dim=[16, 16, 16],
    ),
    "levit-128": dict(
        hidden_sizes=[128, 256, 384], num_attention_heads=[4, 8, 12], depths=[4, 4, 4],
        key_dim=[16, 16, 16],
    ),
    "levit-192": dict(
        hidden_sizes=[192, 288, 384], num_attention_heads=[3, 5, 6], depths=[4, 4, 4],
        key_dim=[32, 32, 32],
    ),
    "levit-256": dict(
        hidden_sizes=[256, 384, 512], num_attention_heads=[4, 6, 8], depths=[4, 4, 4],
        key_dim=[32, 32, 32],
    ),
    "levit-384": dict(
        hidden_sizes=[384, 512, 768], num_attention_heads=[6, 9, 12], depths=[4, 4, 4],
        key_dim=[32, 32, 32], drop_path_rate=0.1,
    ),
}


def canonical_preset_name(name: str) -> str | None:
    """Maps 'levit-128S', 'facebook/levit-128s', 'levit_128s', 'levit_conv_128s' to a preset key."""
    key = name.rsplit("/", 1)[-1].lower().replace("_conv", "").replace("_", "-")
    key = key.split(".", 1)[0]  # timm tags: levit_128s.fb_dist_in1k
    for preset in PRESETS:
        if preset.lower() == key:
            return preset
    return None


__all__ = ["PRESETS", "canonical_preset_name"]
