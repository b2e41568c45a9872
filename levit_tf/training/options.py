"""Settings of a fine-tuning run, checked before TensorFlow is imported (fast CLI errors)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from levit_tf.models.levit.configuration_levit import DISTILLATION_MODES
from levit_tf.utils.image_size import parse_image_size
from levit_tf.utils.optional import require

STRATEGIES = ("default", "mirrored", "multiworker")
MONITOR = "val_accuracy"
#: Options that may differ when a run is resumed (everything else must match).
RESUMABLE_CHANGES = ("out", "verbose")


@dataclasses.dataclass
class FinetuneOptions:
    """Settings of a run (the ``levit-tf finetune`` flags).

    ``model``: a checkpoint / ``.keras`` / HF directory or hub id (``load_pretrained``), or a
    preset name such as ``levit-128S`` for random initialization. ``data``: see
    ``levit_tf.training.data_sources.load_data``. ``image_size``: S or (H, W), multiples of 16;
    None = the checkpoint's (224 for presets); a checkpoint of another size gets its
    attention-bias tables resized. ``drop_path``: None = the config's.
    """

    model: str
    data: str
    epochs: int
    out: str
    image_size: int | tuple[int, int] | None = None
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    drop_path: float | None = None
    seed: int = 0
    distillation: str = "none"
    teacher: str | None = None
    freeze_backbone: bool = False
    mixed_bfloat16: bool = False
    augment: bool = True
    val_fraction: float = 0.2
    strategy: str = "default"
    verbose: Any = "auto"

    def validate(self) -> None:
        """Raises ValueError naming the first bad option."""
        checks = [
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 1, f"batch size must be >= 1, got {self.batch_size}"),
            (self.lr > 0, f"learning rate must be > 0, got {self.lr}"),
            (self.weight_decay >= 0, f"weight decay must be >= 0, got {self.weight_decay}"),
            (self.warmup_epochs >= 0, f"warmup epochs must be >= 0, got {self.warmup_epochs}"),
            (0 <= self.label_smoothing < 1,
             f"label smoothing must be in [0, 1), got {self.label_smoothing}"),
            (self.drop_path is None or 0 <= self.drop_path < 1,
             f"drop path rate must be in [0, 1), got {self.drop_path}"),
            (0 < self.val_fraction < 1,
             f"held-out fraction must be in (0, 1), got {self.val_fraction}"),
            (self.image_size is None or _is_image_size(self.image_size),
             f"image size must be a positive multiple of 16 or (height, width) of them, got "
             f"{self.image_size}"),
            (self.distillation in DISTILLATION_MODES,
             f"distillation must be one of {DISTILLATION_MODES}, got {self.distillation!r}"),
            (self.distillation != "hard" or self.teacher,
             "hard distillation needs a teacher model (--teacher PATH)"),
            (self.teacher is None or self.distillation == "hard",
             "a teacher is only used with hard distillation (--distillation hard)"),
            (self.strategy in STRATEGIES,
             f"strategy must be one of {STRATEGIES}, got {self.strategy!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        self.check_dependencies()

    def check_dependencies(self) -> None:
        """Raises MissingDependency (an ImportError) when the data source needs an optional
        package that is not installed: before anything is written or TensorFlow loads."""
        if self.data == "digits":
            require("sklearn", "--data digits")
        elif self.data.startswith("tfds:"):
            require("tensorflow_datasets", f"--data {self.data}")

    def settings(self) -> dict[str, Any]:
        """The options a resumed run must share with the interrupted one, as they read back
        from the run's JSON state (tuples become lists)."""
        settings = {k: v for k, v in dataclasses.asdict(self).items()
                    if k not in RESUMABLE_CHANGES}
        return json.loads(json.dumps(settings))


def _is_image_size(size: Any) -> bool:
    try:
        parse_image_size(size)
    except (TypeError, ValueError):
        return False
    return True


__all__ = ["DISTILLATION_MODES", "MONITOR", "STRATEGIES", "FinetuneOptions"]
