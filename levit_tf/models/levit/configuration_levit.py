"""`LevitConfig`: the architecture and label set of a LeViT model, HF-compatible.

Field names and defaults follow HuggingFace ``transformers.LevitConfig`` so that an HF
``config.json`` loads unchanged (note that HF's defaults describe LeViT-128, not 128S).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from levit_tf.models.levit.hub import resolve_file
from levit_tf.models.levit.presets import PRESETS, canonical_preset_name
from levit_tf.utils.image_size import image_hw
from levit_tf.utils.labels import imagenet_1k_labels

CONFIG_NAME = "config.json"

#: How ``LevitForImageClassificationWithTeacher`` trains its two heads (``compile(distillation=)``,
#: ``levit_tf.models.levit.distillation``); here, in a module without Keras, so that CLI checks
#: stay fast.
DISTILLATION_MODES = ("none", "hard")

_ARCH_FIELDS = ("hidden_sizes", "num_attention_heads", "depths", "key_dim")


def _as_int_list(value: Any, field: str) -> list[int]:
    if isinstance(value, (int, float)):
        return [int(value)]
    if not isinstance(value, Iterable) or isinstance(value, (str, bytes)):
        raise ValueError(f"LevitConfig.{field} must be a list of ints, got {value!r}")
    out = list(value)
    if not all(isinstance(v, (int, float)) and int(v) == v for v in out):
        raise ValueError(f"LevitConfig.{field} must be a list of ints, got {value!r}")
    return [int(v) for v in out]


def _as_size(value: Any, field: str) -> int | list[int]:
    if isinstance(value, int):
        return value
    size = _as_int_list(value, field)
    if len(size) != 2:
        raise ValueError(f"LevitConfig.{field} must be an int or (height, width), got {value!r}")
    return size


class LevitConfig:
    """Configuration of a LeViT model (HF field names and defaults).

    Args:
        image_size: int or (height, width). Input resolution; a multiple of ``patch_size``.
        num_channels: int. Input channels.
        kernel_size, stride, padding: int. The stem's 3x3 stride-2 convolutions.
        patch_size: int. Total stem stride (16 = four stride-2 convolutions).
        hidden_sizes: list of int. Token width per stage (C).
        num_attention_heads: list of int. Heads per stage.
        depths: list of int. Attention+MLP blocks per stage.
        key_dim: list of int. Query/key width per head (D); ``key_dim[0]`` also sizes the
            shrinking attention (``hidden_sizes[i] // key_dim[0]`` heads, value ratio 4).
        drop_path_rate: float. Stochastic depth rate of every residual block.
        mlp_ratio: list of int. MLP expansion per stage.
        attention_ratio: list of int. Value width / key width per stage.
        initializer_range: float. Kept for HF compatibility.
        num_labels, id2label, label2id: the classification label set.
    """

    model_type = "levit"

    def __init__(
        self,
        image_size: int | Sequence[int] = 224,
        num_channels: int = 3,
        kernel_size: int = 3,
        stride: int = 2,
        padding: int = 1,
        patch_size: int = 16,
        hidden_sizes: Sequence[int] = (128, 256, 384),
        num_attention_heads: Sequence[int] = (4, 8, 12),
        depths: Sequence[int] = (4, 4, 4),
        key_dim: Sequence[int] = (16, 16, 16),
        drop_path_rate: float = 0.0,
        mlp_ratio: Sequence[int] = (2, 2, 2),
        attention_ratio: Sequence[int] = (2, 2, 2),
        initializer_range: float = 0.02,
        num_labels: int | None = None,
        id2label: dict[int | str, str] | None = None,
        label2id: dict[str, int] | None = None,
        architectures: list[str] | None = None,
        **extra: Any,
    ) -> None:
        self.image_size = _as_size(image_size, "image_size")
        self.num_channels = int(num_channels)
        self.kernel_size = int(kernel_size)
        self.stride = int(stride)
        self.padding = int(padding)
        self.patch_size = int(patch_size)
        self.hidden_sizes = _as_int_list(hidden_sizes, "hidden_sizes")
        self.num_attention_heads = _as_int_list(num_attention_heads, "num_attention_heads")
        self.depths = _as_int_list(depths, "depths")
        self.key_dim = _as_int_list(key_dim, "key_dim")
        self.drop_path_rate = float(drop_path_rate)
        self.mlp_ratio = _as_int_list(mlp_ratio, "mlp_ratio")
        self.attention_ratio = _as_int_list(attention_ratio, "attention_ratio")
        self.initializer_range = float(initializer_range)
        self.architectures = list(architectures) if architectures else None
        extra.pop("model_type", None)
        extra.pop("down_ops", None)  # derived; older HF configs serialized it
        self.extra = extra  # unknown HF keys (transformers_version, dtype, ...) round-trip as-is
        self._set_labels(num_labels, id2label, label2id)
        self.validate()

    # ----------------------------------------------------------------------------- labels
    def _set_labels(self, num_labels, id2label, label2id) -> None:
        if num_labels is not None and (isinstance(num_labels, bool) or int(num_labels) < 0):
            raise ValueError(f"LevitConfig: num_labels must be >= 0 (0: no heads), got "
                             f"{num_labels!r}")
        if id2label is not None:
            id2label = {int(k): str(v) for k, v in id2label.items()}
            if num_labels is not None and num_labels != len(id2label):
                raise ValueError(
                    f"LevitConfig: num_labels={num_labels} but id2label has {len(id2label)} entries"
                )
        else:
            count = 2 if num_labels is None else int(num_labels)  # HF's default is 2 labels
            id2label = {i: f"LABEL_{i}" for i in range(count)}
        self.id2label: dict[int, str] = dict(sorted(id2label.items()))
        self.label2id: dict[str, int] = (
            {str(k): int(v) for k, v in label2id.items()}
            if label2id is not None and len(label2id) == len(self.id2label)
            else {v: k for k, v in self.id2label.items()}
        )

    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    @num_labels.setter
    def num_labels(self, value: int) -> None:
        self._set_labels(value, None, None)

    def with_imagenet_labels(self) -> LevitConfig:
        """Returns a copy labelled with the 1000 ImageNet-1k class names."""
        out = copy.deepcopy(self)
        out._set_labels(None, dict(enumerate(imagenet_1k_labels())), None)
        return out

    # ----------------------------------------------------------------------------- geometry
    @property
    def image_hw(self) -> tuple[int, int]:
        """Input (height, width)."""
        return image_hw(self.image_size)

    @property
    def num_stages(self) -> int:
        return len(self.hidden_sizes)

    def stage_grids(self) -> list[tuple[int, int]]:
        """Token grid (height, width) that each stage's attention blocks run on."""
        h, w = (s // self.patch_size for s in self.image_hw)
        grids = []
        for _ in range(self.num_stages):
            grids.append((h, w))
            h, w = (h - 1) // 2 + 1, (w - 1) // 2 + 1
        return grids

    def down_heads(self, stage: int) -> int:
        """Heads of the shrinking attention that ends ``stage`` (HF ``down_ops``)."""
        return self.hidden_sizes[stage] // self.key_dim[0]

    def validate(self) -> None:
        lists = {f: getattr(self, f) for f in (*_ARCH_FIELDS, "mlp_ratio", "attention_ratio")}
        lengths = {f: len(v) for f, v in lists.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"LevitConfig: per-stage lists differ in length: {lengths}")
        for field, values in lists.items():
            if any(v <= 0 for v in values):
                raise ValueError(f"LevitConfig.{field} must be positive, got {values}")
        if self.hidden_sizes[0] % 8:
            raise ValueError(f"LevitConfig.hidden_sizes[0]={self.hidden_sizes[0]} must divide by 8")
        if self.patch_size != self.stride**4 or (self.kernel_size, self.padding) != (3, 1):
            raise ValueError(
                "LevitConfig: the stem is four 3x3 convolutions (kernel_size=3, padding=1); "
                f"patch_size must be stride**4, got patch_size={self.patch_size}, "
                f"stride={self.stride}, kernel_size={self.kernel_size}, padding={self.padding}"
            )
        for side in self.image_hw:
            if side <= 0 or side % self.patch_size:
                raise ValueError(
                    f"LevitConfig.image_size={self.image_size} must be a positive multiple of "
                    f"patch_size={self.patch_size}"
                )
        for stage in range(self.num_stages - 1):
            if self.hidden_sizes[stage] % self.key_dim[0]:
                raise ValueError(
                    f"LevitConfig: hidden_sizes[{stage}]={self.hidden_sizes[stage]} must divide "
                    f"by key_dim[0]={self.key_dim[0]} (heads of the shrinking attention)"
                )

    # ----------------------------------------------------------------------------- presets
    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> LevitConfig:
        """One of ``PRESETS`` ('levit-128S' ... 'levit-384'), labelled with ImageNet-1k."""
        preset = canonical_preset_name(name)
        if preset is None:
            raise ValueError(f"Unknown LeViT preset {name!r}; choose from {sorted(PRESETS)}")
        fields = dict(PRESETS[preset])
        fields.update(overrides)
        config = cls(**fields)
        if "num_labels" not in overrides and "id2label" not in overrides:
            config = config.with_imagenet_labels()
        return config

    def preset_name(self) -> str | None:
        """The released architecture this config describes, if any."""
        for name, fields in PRESETS.items():
            if all(getattr(self, f) == fields[f] for f in _ARCH_FIELDS):
                return name
        return None

    # ----------------------------------------------------------------------------- (de)serialize
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.extra)
        out.update(
            model_type=self.model_type,
            image_size=self.image_size,
            num_channels=self.num_channels,
            kernel_size=self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            patch_size=self.patch_size,
            hidden_sizes=list(self.hidden_sizes),
            num_attention_heads=list(self.num_attention_heads),
            depths=list(self.depths),
            key_dim=list(self.key_dim),
            # transformers 5 types this field int and rejects 0.0; keep whole numbers ints
            drop_path_rate=(int(self.drop_path_rate) if self.drop_path_rate.is_integer()
                            else self.drop_path_rate),
            mlp_ratio=list(self.mlp_ratio),
            attention_ratio=list(self.attention_ratio),
            initializer_range=self.initializer_range,
            id2label={str(k): v for k, v in self.id2label.items()},
            label2id=dict(self.label2id),
        )
        if self.architectures:
            out["architectures"] = list(self.architectures)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], **overrides: Any) -> LevitConfig:
        data = dict(data)
        model_type = data.get("model_type", "levit")
        if model_type != "levit":
            raise ValueError(f"config has model_type={model_type!r}, expected 'levit'")
        data.update(overrides)
        if "num_labels" in overrides and "id2label" not in overrides:
            data.pop("id2label", None)
            data.pop("label2id", None)
        return cls(**data)

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json_file(cls, path: str | os.PathLike, **overrides: Any) -> LevitConfig:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"config file not found: {path}") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{path} is not a valid JSON config: {err}") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path} must hold a JSON object, got {type(data).__name__}")
        try:
            return cls.from_dict(data, **overrides)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: {err}") from None

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / CONFIG_NAME
        path.write_text(self.to_json_string())
        return path

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike, **overrides: Any) -> LevitConfig:
        """Reads ``config.json`` from a model directory or an HF hub id (cache first)."""
        return cls.from_json_file(resolve_file(source, CONFIG_NAME), **overrides)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LevitConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"LevitConfig {self.to_json_string()}"
