"""PyTorch LeViT checkpoint -> Keras model, with strict accounting of every tensor.

Sources: an HF model directory (config.json + model.safetensors / pytorch_model.bin), an HF hub
id, a timm checkpoint (``levit_*`` or ``levit_conv_*``, .pth or .safetensors, or a timm hub
directory), a facebookresearch ``.pth`` ({'model': state_dict}), a converted ``.keras`` file, or
a keras-hub preset directory of ours (``levit_tf.keras_hub``; needs keras-hub).
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from levit_tf.converters.checkpoint_io import StateDict, read_state_dict
from levit_tf.converters.errors import ConversionError, format_key_report
from levit_tf.converters.infer_config import infer_config
from levit_tf.converters.keras_targets import canonical_targets
from levit_tf.converters.layouts import CanonicalState, to_canonical
from levit_tf.converters.preset_files import PresetError, check_preset, is_preset
from levit_tf.models.levit.attention_bias import attention_bias_index, resize_bias_table
from levit_tf.models.levit.configuration_levit import LevitConfig
from levit_tf.models.levit.hub import hub_download, looks_like_hub_id
from levit_tf.models.levit.modeling_levit import (
    LevitForImageClassification,
    LevitForImageClassificationWithTeacher,
    LevitModel,
    LevitPreTrainedModel,
)
from levit_tf.models.levit.resolution import (
    GridChange,
    change_resolution,
    check_mode,
    format_hw,
    image_hw,
    parse_image_size,
)
from levit_tf.utils.files import atomic_path, check_writable_file

logger = logging.getLogger("levit_tf.converters")

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
MODEL_CLASSES: dict[str, type[LevitPreTrainedModel]] = {
    "LevitModel": LevitModel,
    "LevitForImageClassification": LevitForImageClassification,
    "LevitForImageClassificationWithTeacher": LevitForImageClassificationWithTeacher,
}
HEAD_PREFIXES = ("classifier.", "classifier_distill.")


@dataclass
class Checkpoint:
    """Tensors of a checkpoint plus what its directory says about them."""

    state: StateDict
    weights_path: Path
    config: LevitConfig | None = None
    architectures: list[str] = field(default_factory=list)


def _read_config_json(path: Path) -> tuple[LevitConfig | None, list[str]]:
    """An HF LeViT config.json -> config; a timm config.json (no model_type) -> None."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConversionError(f"{path}: not a valid JSON config ({err})") from None
    if not isinstance(data, dict) or data.get("model_type") != "levit":
        return None, []  # timm's config.json describes `architecture`, not a LevitConfig
    try:
        return LevitConfig.from_dict(data), list(data.get("architectures") or [])
    except (TypeError, ValueError) as err:
        raise ConversionError(f"{path}: invalid LeViT config ({err})") from None


def _weights_in(directory: Path) -> Path:
    for name in WEIGHT_FILES:
        if (directory / name).is_file():
            return directory / name
    found = sorted(p.name for p in directory.iterdir() if p.suffix in (".pth", ".pt",
                                                                        ".safetensors", ".bin"))
    if len(found) == 1:
        return directory / found[0]
    raise ConversionError(
        f"{directory}: expected one of {', '.join(WEIGHT_FILES)}"
        + (f" (found several weight files: {', '.join(found)})" if found else " (none found)"))


def read_checkpoint(source: str | os.PathLike) -> Checkpoint:
    """Reads a checkpoint file, a model directory or an HF hub id."""
    path = Path(source)
    if path.is_dir():
        weights = _weights_in(path)
        config, architectures = (None, [])
        if (path / "config.json").is_file():
            config, architectures = _read_config_json(path / "config.json")
        return Checkpoint(read_state_dict(weights), weights, config, architectures)
    if path.is_file():
        return Checkpoint(read_state_dict(path), path)
    if not looks_like_hub_id(source):
        raise ConversionError(f"{source}: no such file or directory")
    try:
        config_path = hub_download(str(source), "config.json")
    except FileNotFoundError as err:
        raise ConversionError(str(err)) from None
    errors = []
    for name in WEIGHT_FILES:
        try:
            weights = hub_download(str(source), name)
            break
        except FileNotFoundError as err:
            errors.append(str(err))
    else:
        raise ConversionError(f"hub repo {source!r}: no weights found ({'; '.join(errors)})")
    config, architectures = _read_config_json(config_path)
    return Checkpoint(read_state_dict(weights), weights, config, architectures)


def choose_model_class(canonical: CanonicalState, architectures: list[str],
                       requested: type[LevitPreTrainedModel] | None) -> type[LevitPreTrainedModel]:
    """The class the checkpoint is (HF ``architectures``, or the heads it has), unless requested."""
    if requested is not None and requested is not LevitPreTrainedModel:
        return requested
    for name in architectures:
        if name in MODEL_CLASSES:
            return MODEL_CLASSES[name]
    if "classifier_distill.linear.weight" in canonical:
        return LevitForImageClassificationWithTeacher
    if "classifier.linear.weight" in canonical:
        return LevitForImageClassification
    return LevitModel


def _to_keras_layout(array: np.ndarray, kind: str) -> np.ndarray:
    if kind == "linear":
        if array.ndim == 4 and array.shape[2:] == (1, 1):  # timm levit_conv_* 1x1 convs
            array = array[:, :, 0, 0]
        return array.T if array.ndim == 2 else array
    if kind == "conv":
        return np.transpose(array, (2, 3, 1, 0)) if array.ndim == 4 else array
    return array


def assign_weights(model: LevitPreTrainedModel, canonical: CanonicalState, *,
                   ignore_mismatched_sizes: bool = False, progress: bool = False) -> None:
    """Assigns every Keras weight exactly once from ``canonical``; one error lists all problems.

    Dropped on purpose: ``num_batches_tracked``; heads the chosen class does not have;
    ``attention_bias_idxs`` after checking it equals the model's own index.
    """
    targets, index_checks = canonical_targets(model)
    model_heads = tuple(f"{name}." for name in getattr(model, "head_names", ())
                        if getattr(model, name) is not None)
    assigned: set[str] = set()
    unexpected: list[str] = []
    mismatched: list[tuple[str, tuple, tuple]] = []
    skipped: list[str] = []
    bad_index: list[str] = []
    dropped_heads: set[str] = set()
    for name, (array, source_key) in tqdm(canonical.items(), desc="converting", unit="tensor",
                                          disable=not progress, leave=False):
        if name.endswith("num_batches_tracked"):
            continue
        if name in index_checks:
            expected = index_checks[name].expected
            if array.shape != expected.shape or not np.array_equal(array, expected):
                bad_index.append(source_key)
            continue
        if name not in targets:
            if name.startswith(HEAD_PREFIXES) and not name.startswith(model_heads):
                dropped_heads.add(name.split(".", 1)[0])
                continue
            unexpected.append(source_key)
            continue
        target = targets[name]
        value = _to_keras_layout(array, target.kind)
        if tuple(value.shape) != tuple(target.variable.shape):
            if ignore_mismatched_sizes:
                skipped.append(source_key)
                assigned.add(name)
                continue
            mismatched.append((source_key, tuple(array.shape), tuple(target.variable.shape)))
            continue
        target.variable.assign(value.astype(target.variable.dtype))
        assigned.add(name)
    missing = sorted(set(targets) - assigned)
    if missing or unexpected or mismatched or bad_index:
        report = format_key_report(
            f"checkpoint does not match {type(model).__name__} "
            f"({model.config.preset_name() or 'custom config'}):",
            missing, unexpected, mismatched)
        if bad_index:
            report += (f"\n  attention_bias_idxs differ from the model's index "
                       f"({len(bad_index)}): {', '.join(bad_index[:6])}")
        raise ConversionError(report)
    if dropped_heads:
        logger.warning("dropped checkpoint heads that %s does not have: %s",
                       type(model).__name__, ", ".join(sorted(dropped_heads)))
    if skipped:
        logger.warning("kept fresh weights where sizes differ (ignore_mismatched_sizes): %s",
                       ", ".join(skipped))


def load_pretrained(source: str | os.PathLike, *,
                    model_class: type[LevitPreTrainedModel] | None = None,
                    layout: str | None = None, num_labels: int | None = None,
                    ignore_mismatched_sizes: bool = False, progress: bool = False,
                    bias_interpolation: str = "bicubic",
                    source_image_size: int | tuple[int, int] | None = None,
                    **config_overrides: Any) -> LevitPreTrainedModel:
    """Builds the Keras model of a checkpoint and loads its weights.

    Args:
        source: checkpoint file, model directory, HF hub id, or ``.keras`` file.
        model_class: force a class (default: what the checkpoint is).
        layout: 'hf' | 'timm' | 'fb' (default: detected from the key names).
        num_labels: new label count; with ``ignore_mismatched_sizes=True`` the heads start fresh.
        bias_interpolation: 'bicubic' or 'bilinear': how the attention-bias tables are resized
            when ``image_size`` differs from the checkpoint's (see
            ``levit_tf.models.levit.resolution``).
        source_image_size: the size a checkpoint without a config.json was trained at, only
            needed when its bias tables fit several sizes (non-square checkpoints).
        config_overrides: other LevitConfig fields (e.g. ``drop_path_rate``; ``image_size``,
            int or (H, W), a multiple of 16: the bias tables are resized to it, with one
            warning, and every other weight loads unchanged).
    """
    check_mode(bias_interpolation)
    source_hw = None if source_image_size is None else image_hw(
        _checked_size(source_image_size, "source_image_size"))
    if "image_size" in config_overrides:
        config_overrides["image_size"] = _checked_size(config_overrides["image_size"],
                                                       "image_size")
    if str(source).endswith(".keras"):
        model = _load_keras(Path(source), model_class)
        if "image_size" in config_overrides:
            model = change_resolution(model, config_overrides["image_size"], bias_interpolation)
        return model
    if is_preset(source):  # a keras-hub preset directory (levit-tf convert --format keras-hub)
        model = _load_keras_hub_preset(Path(source), model_class)
        if "image_size" in config_overrides:
            model = change_resolution(model, config_overrides["image_size"], bias_interpolation)
        return model
    checkpoint = read_checkpoint(source)
    _, canonical = to_canonical(checkpoint.state, layout)
    config = checkpoint.config or infer_config(canonical, source_hw)
    if checkpoint.config is not None and source_hw not in (None, config.image_hw):
        raise ConversionError(
            f"source_image_size={format_hw(source_hw)} but the checkpoint's config says "
            f"{format_hw(config.image_hw)}")
    source_config = config
    overrides = dict(config_overrides)
    if num_labels is not None and num_labels != config.num_labels:
        overrides["num_labels"] = num_labels
    if overrides:
        try:
            config = LevitConfig.from_dict(config.to_dict(), **overrides)
        except (TypeError, ValueError) as err:
            raise ConversionError(f"invalid config override {overrides}: {err}") from None
    cls = choose_model_class(canonical, checkpoint.architectures, model_class)
    config.architectures = [cls.__name__]
    model = cls(config)
    try:
        canonical = resize_checkpoint_biases(canonical, source_config, config, bias_interpolation)
        assign_weights(model, canonical, ignore_mismatched_sizes=ignore_mismatched_sizes,
                       progress=progress)
    except ConversionError as err:
        if checkpoint.config is not None:
            culprit = config_mismatch(checkpoint, canonical, source_config)
            if culprit:
                raise ConversionError(culprit) from None
        raise ConversionError(f"{checkpoint.weights_path}: {err}") from None
    return model


_ARCHITECTURE_KEYS = ("hidden_sizes", "num_attention_heads", "depths", "key_dim",
                      "attention_ratio", "mlp_ratio", "num_channels", "image_size")


def config_mismatch(checkpoint: Checkpoint, canonical: CanonicalState,
                    config: LevitConfig) -> str:
    """When the weights do not fit the config.json's model: "" if the architecture read off
    the weights equals the config's (the weights themselves are off), else one message naming
    each differing config key once, with what the weights have, and the config as culprit."""
    try:
        inferred = infer_config(canonical).to_dict()
    except ConversionError:
        return ""
    said = config.to_dict()
    differences = [f"{key} {said[key]} (the weights have {inferred[key]})"
                   for key in _ARCHITECTURE_KEYS
                   if key in said and key in inferred and said[key] != inferred[key]]
    if not differences:
        return ""
    preset = LevitConfig.from_dict(inferred).preset_name()
    weights = f"{preset} weights" if preset else "the weights"
    return (f"{checkpoint.weights_path.parent / 'config.json'} does not match "
            f"{checkpoint.weights_path.name} ({weights}): the config says "
            + "; ".join(differences) + ". Fix or remove config.json (without it the "
            "architecture is read off the weights)")


def _checked_size(size: Any, name: str) -> int | tuple[int, int]:
    try:
        return parse_image_size(size)
    except (TypeError, ValueError) as err:
        raise ConversionError(f"{name}: {err}") from None


_BIAS_NAME = re.compile(
    r"^levit\.encoder\.stages\.(\d+)\.layers\.\d+\.(module\.)?attention_bias(es|_idxs)$")


def resize_checkpoint_biases(canonical: CanonicalState, source: LevitConfig, target: LevitConfig,
                             mode: str = "bicubic") -> CanonicalState:
    """``canonical`` with every attention-bias table resized from ``source``'s key grids to
    ``target``'s (``resize_bias_table``), and one warning saying so.

    Self-attention (``...module.attention_biases``) and the shrinking attention that ends stage
    s (``...layers.N.attention_biases``) both index stage s's key grid. Stored
    ``attention_bias_idxs`` are checked against the source grid's index and replaced by the
    target's (a wrong one is left for ``assign_weights`` to report). Unchanged grids: returned
    as is.
    """
    change = GridChange.between(source, target, mode)
    if not change.changes:
        return canonical
    out: CanonicalState = dict(canonical)
    bad: list[str] = []
    tables = 0
    for name, (array, key) in canonical.items():
        match = _BIAS_NAME.match(name)
        if not match:
            continue
        stage = int(match.group(1))
        if stage >= len(change.from_grids):
            continue  # not a layer of this model: assign_weights reports it
        old, new = change.from_grids[stage], change.to_grids[stage]
        if match.group(3) == "_idxs":
            stride = 1 if match.group(2) else 2
            if np.array_equal(array, attention_bias_index(old, stride)):
                out[name] = (attention_bias_index(new, stride), key)
            continue
        if array.ndim != 2 or array.shape[1] != old[0] * old[1]:
            bad.append(f"{key} {tuple(array.shape)} (expected (heads, {old[0] * old[1]}))")
            continue
        if old != new:
            out[name] = (resize_bias_table(array, old, new, mode), key)
            tables += 1
    if bad:
        raise ConversionError(
            f"bias tables do not fit the checkpoint's {format_hw(change.from_size)} input "
            f"(stage key grids {', '.join(format_hw(g) for g in change.from_grids)}): "
            + "; ".join(bad[:6]))
    logger.warning(change.message(tables))
    return out


def _stored_class(path: Path) -> str:
    """The top-level class a .keras file names (``levit_tf>LevitModel``), or "" if unreadable."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
        return str(config.get("registered_name") or config.get("class_name") or "")
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return ""


def _load_keras(path: Path, model_class: type[LevitPreTrainedModel] | None):
    import keras

    from levit_tf import __version__

    if not path.is_file():
        raise ConversionError(f"{path}: no such file")
    try:
        model = keras.saving.load_model(path)
    except Exception as err:  # zip / JSON / deserialization errors of many kinds
        unknown = re.search(r"Could not locate class '([^']+)'", str(err))
        if unknown:  # Keras appends the whole config: name the class instead
            stored = _stored_class(path) or "?"
            raise ConversionError(
                f"{path}: class {unknown.group(1)!r} (in a {stored} model) is not one levit-tf "
                f"{__version__} knows: a file from a newer levit-tf, or another library's"
                ) from None
        text = str(err).strip()
        cause = text.rpartition("Exception encountered:")[2].strip()  # Keras' wrapped cause
        reason = cause.splitlines()[0] if cause else type(err).__name__
        raise ConversionError(f"{path}: not a loadable .keras LeViT model ({reason[:300]})"
                              ) from None
    wanted = model_class or LevitPreTrainedModel
    if not isinstance(model, wanted):
        raise ConversionError(f"{path}: holds a {type(model).__name__}, not a {wanted.__name__}")
    return model


def _load_keras_hub_preset(path: Path, model_class: type[LevitPreTrainedModel] | None):
    from levit_tf.utils.optional import require

    try:
        check_preset(path)
    except PresetError as err:
        raise ConversionError(str(err)) from None
    require("keras_hub", f"{path} (a keras-hub preset)")
    from levit_tf.keras_hub.presets import load_preset_model

    model = load_preset_model(path)
    wanted = model_class or LevitPreTrainedModel
    if not isinstance(model, wanted):
        raise ConversionError(f"{path}: holds a {type(model).__name__}, not a {wanted.__name__}")
    return model


def convert_to_file(source: str | os.PathLike, output: str | os.PathLike,
                    **kwargs: Any) -> LevitPreTrainedModel:
    """Converts ``source`` and writes ``output`` (.keras) atomically: no file on failure."""
    output = Path(output)
    if output.suffix != ".keras":
        raise ConversionError(f"{output}: the output file name must end in .keras")
    if not output.parent.exists():
        raise ConversionError(f"{output.parent}: output directory does not exist")
    try:  # before the conversion work: an unwritable output fails at once
        check_writable_file(output)
    except ValueError as err:
        raise ConversionError(str(err)) from None
    model = load_pretrained(source, **kwargs)
    with atomic_path(output, suffix=".keras") as temporary:
        model.save(temporary)
    return model
