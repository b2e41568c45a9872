"""Processor configuration mirroring Hugging Face's ``preprocessor_config.json`` for LeViT."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from levit_tf.preprocessing.pil_resample import check_resample

IMAGENET_DEFAULT_MEAN = (0.485, 0.456, 0.406)
IMAGENET_DEFAULT_STD = (0.229, 0.224, 0.225)

#: Keys this package understands; anything else in a config file is kept verbatim.
KNOWN_KEYS = (
    "do_resize",
    "size",
    "resample",
    "do_center_crop",
    "crop_size",
    "do_rescale",
    "rescale_factor",
    "do_normalize",
    "image_mean",
    "image_std",
    "do_convert_rgb",
)


def _size_dict(value: Any, *, default_to_square: bool, name: str) -> dict[str, int]:
    """Normalises an HF size spec (int, [h, w], or dict) like ``get_size_dict``."""
    if isinstance(value, Mapping):
        out = {k: int(v) for k, v in value.items() if v is not None}
        if "shortest_edge" in out or ("height" in out and "width" in out):
            return out
        raise ValueError(
            f"{name} must have 'shortest_edge' or 'height' and 'width'; got {dict(value)!r}"
        )
    if isinstance(value, int) and not isinstance(value, bool):
        if default_to_square:
            return {"height": value, "width": value}
        return {"shortest_edge": value}
    if isinstance(value, Sequence) and len(value) == 2:
        return {"height": int(value[0]), "width": int(value[1])}
    raise ValueError(f"{name} must be an int, a (height, width) pair or a dict; got {value!r}")


def _triple(value: Any, name: str) -> tuple[float, float, float]:
    if isinstance(value, (int, float)):
        return (float(value),) * 3
    values = tuple(float(v) for v in value)
    if len(values) != 3:
        raise ValueError(f"{name} must have 3 values (RGB); got {values!r}")
    return values


@dataclasses.dataclass(frozen=True)
class LevitProcessorConfig:
    """HF ``LevitImageProcessor`` parameters (defaults = HF defaults).

    ``size={"shortest_edge": 224}`` means shortest edge -> ``int(256 / 224 * 224) = 256``.
    ``do_convert_rgb`` is kept for round trips; inputs are always converted to 3-channel
    RGB because the model needs 3 channels (see ``inputs.to_rgb_uint8``).
    """

    do_resize: bool = True
    size: dict[str, int] = dataclasses.field(default_factory=lambda: {"shortest_edge": 224})
    resample: int = 3
    do_center_crop: bool = True
    crop_size: dict[str, int] = dataclasses.field(
        default_factory=lambda: {"height": 224, "width": 224}
    )
    do_rescale: bool = True
    rescale_factor: float = 1 / 255
    do_normalize: bool = True
    image_mean: tuple[float, float, float] = IMAGENET_DEFAULT_MEAN
    image_std: tuple[float, float, float] = IMAGENET_DEFAULT_STD
    do_convert_rgb: bool | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "size", _size_dict(self.size, default_to_square=False, name="size"))
        crop = _size_dict(self.crop_size, default_to_square=True, name="crop_size")
        if "height" not in crop or "width" not in crop:
            raise ValueError(f"crop_size must have 'height' and 'width'; got {crop!r}")
        set_(self, "crop_size", crop)
        set_(self, "resample", check_resample(self.resample))
        set_(self, "image_mean", _triple(self.image_mean, "image_mean"))
        set_(self, "image_std", _triple(self.image_std, "image_std"))
        if any(s == 0 for s in self.image_std):
            raise ValueError(f"image_std must be non-zero; got {self.image_std!r}")
        set_(self, "rescale_factor", float(self.rescale_factor))

    @property
    def output_hw(self) -> tuple[int, int] | None:
        """Static (height, width) of the output, or ``None`` when it depends on the input."""
        if self.do_center_crop:
            return self.crop_size["height"], self.crop_size["width"]
        if self.do_resize and "height" in self.size and "width" in self.size:
            return self.size["height"], self.size["width"]
        return None

    @classmethod
    def from_dict(cls, config: Mapping[str, Any], **overrides: Any) -> LevitProcessorConfig:
        """Config from an HF ``preprocessor_config.json`` dict; unknown keys go to ``extra``."""
        merged = {**config, **overrides}
        known = {k: merged[k] for k in KNOWN_KEYS if k in merged and merged[k] is not None}
        extra = {k: v for k, v in merged.items() if k not in KNOWN_KEYS}
        if "do_convert_rgb" in merged:
            known["do_convert_rgb"] = merged["do_convert_rgb"]
        return cls(**known, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        """HF-compatible dict (``image_processor_type`` = ``LevitImageProcessor``)."""
        out: dict[str, Any] = dict(self.extra)
        out.pop("feature_extractor_type", None)
        out.update(
            do_resize=self.do_resize,
            size=dict(self.size),
            resample=self.resample,
            do_center_crop=self.do_center_crop,
            crop_size=dict(self.crop_size),
            do_rescale=self.do_rescale,
            rescale_factor=self.rescale_factor,
            do_normalize=self.do_normalize,
            image_mean=list(self.image_mean),
            image_std=list(self.image_std),
            image_processor_type="LevitImageProcessor",
        )
        if self.do_convert_rgb is not None:
            out["do_convert_rgb"] = self.do_convert_rgb
        return out
