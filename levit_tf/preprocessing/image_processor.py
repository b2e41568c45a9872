"""``LevitImageProcessor``: HF-compatible LeViT preprocessing backed by a pure TF graph."""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from pathlib import Path
from typing import Any, Literal

import tensorflow as tf

from levit_tf.preprocessing.config import LevitProcessorConfig
from levit_tf.preprocessing.inputs import to_image_list
from levit_tf.preprocessing.transforms import preprocess_image

CONFIG_NAME = "preprocessor_config.json"


def _read_config_file(path_or_id: str | os.PathLike, **hub_kwargs: Any) -> dict[str, Any]:
    """Loads ``preprocessor_config.json`` from a directory, a json file, or a hub repo id."""
    path = Path(path_or_id)
    if path.is_dir():
        path = path / CONFIG_NAME
        if not path.is_file():
            raise FileNotFoundError(f"no {CONFIG_NAME} in directory {path.parent}")
    elif not path.is_file():
        try:
            from huggingface_hub import hf_hub_download
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError(
                f"{path_or_id!r} is not a local path; install huggingface_hub to load hub ids"
            ) from err
        path = Path(hf_hub_download(str(path_or_id), CONFIG_NAME, **hub_kwargs))
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err


class LevitImageProcessor:
    """LeViT image processor with Hugging Face's parameters, defaults and file format.

    Calling it on images returns ``{"pixel_values": float32 (B, H, W, 3)}`` (NHWC), or
    (B, 3, H, W) with ``data_format="channels_first"``; pixels equal HF's PIL-backed
    processor (``transformers.LevitImageProcessorPil``). ``tf_preprocess`` exposes the
    per-image pure-TF function for tf.data / tf.function / SavedModel signatures.
    """

    model_input_names = ("pixel_values",)

    def __init__(self, config: LevitProcessorConfig | None = None, **kwargs: Any) -> None:
        base = config.to_dict() if config is not None else {}
        self.config = (
            LevitProcessorConfig.from_dict(base, **kwargs)
            if kwargs
            else (config or LevitProcessorConfig())
        )
        self._fns: dict[str, tf.types.experimental.PolymorphicFunction] = {}

    # -- the graph ---------------------------------------------------------------
    def tf_preprocess(self, image: tf.Tensor) -> tf.Tensor:
        """uint8 (H, W[, C]) tensor -> float32 (out_h, out_w, 3); pure TF, graph-safe."""
        return preprocess_image(image, self.config)

    def _function(self, config: LevitProcessorConfig):
        key = json.dumps(config.to_dict(), sort_keys=True)
        fn = self._fns.get(key)
        if fn is None:
            fn = tf.function(
                lambda image: preprocess_image(image, config),
                input_signature=[tf.TensorSpec([None, None, None], tf.uint8)],
            )
            self._fns[key] = fn
        return fn

    # -- HF-style API --------------------------------------------------------------
    def __call__(
        self,
        images: Any,
        return_tensors: Literal["tf", "np"] | None = "np",
        data_format: Literal["channels_last", "channels_first"] = "channels_last",
        **overrides: Any,
    ) -> dict[str, Any]:
        """Preprocesses one image or a list of (differently sized) images.

        Args:
            images: PIL image, uint8 numpy array (H, W), (H, W, 1|2|3|4) or batch
                (B, H, W, C), uint8 tf.Tensor, or a list of these.
            return_tensors: "np" (default; also for None) or "tf".
            data_format: "channels_last" (B, H, W, 3) or "channels_first" (B, 3, H, W).
            **overrides: per-call config values (e.g. ``do_center_crop=False``).

        Returns:
            ``{"pixel_values": float32 batch}``.
        """
        if data_format not in ("channels_last", "channels_first"):
            raise ValueError(
                f"data_format must be 'channels_last' or 'channels_first', got {data_format!r}"
            )
        if return_tensors not in ("tf", "np", None):
            raise ValueError(f"return_tensors must be 'tf' or 'np', got {return_tensors!r}")
        config = self.config
        if overrides:
            unknown = set(overrides) - {f.name for f in dataclasses.fields(LevitProcessorConfig)}
            if unknown:
                raise TypeError(f"unknown processor arguments: {sorted(unknown)}")
            config = LevitProcessorConfig.from_dict(config.to_dict(), **overrides)
        fn = self._function(config)
        if self.config.extra.get("exif_transpose"):
            images = _exif_transpose(images)
        outputs = []
        for image in to_image_list(images):
            if isinstance(image, tf.Tensor) and image.dtype != tf.uint8:
                if image.dtype != tf.uint16:
                    raise TypeError(f"expected uint8 image tensors, got dtype {image.dtype.name}")
                image = tf.cast(tf.bitwise.right_shift(image, 8), tf.uint8)
            if len(image.shape) == 2:
                image = image[:, :, None]
            outputs.append(fn(tf.convert_to_tensor(image)))
        shapes = {tuple(o.shape) for o in outputs}
        if len(shapes) > 1:
            raise ValueError(
                f"processed images have different shapes {sorted(shapes)}; enable do_center_crop "
                "or use a fixed size to batch them"
            )
        batch = tf.stack(outputs)
        if data_format == "channels_first":
            batch = tf.transpose(batch, [0, 3, 1, 2])
        return {"pixel_values": batch if return_tensors == "tf" else batch.numpy()}

    preprocess = __call__

    # -- (de)serialisation -----------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool = False,
        token: str | bool | None = None,
        **overrides: Any,
    ) -> LevitImageProcessor:
        """Loads an HF ``preprocessor_config.json`` from a directory, file, or hub repo id.

        Hub ids go through ``huggingface_hub.hf_hub_download`` (honours ``HF_HUB_CACHE``
        and ``HF_HUB_OFFLINE``). ``overrides`` replace config values.
        """
        hub_kwargs = {"revision": revision, "cache_dir": cache_dir, "token": token}
        if local_files_only:
            hub_kwargs["local_files_only"] = True
        config = _read_config_file(pretrained_model_name_or_path, **hub_kwargs)
        return cls(LevitProcessorConfig.from_dict(config, **overrides))

    def to_dict(self) -> dict[str, Any]:
        """The HF ``preprocessor_config.json`` content."""
        return self.config.to_dict()

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def save_pretrained(self, save_directory: str | os.PathLike) -> list[str]:
        """Writes ``preprocessor_config.json`` (readable by ``transformers``) into a directory."""
        directory = Path(save_directory)
        if directory.is_file():
            raise ValueError(f"save_directory {directory} is a file, expected a directory")
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / CONFIG_NAME
        path.write_text(self.to_json_string(), encoding="utf-8")
        return [str(path)]

    def __repr__(self) -> str:
        return f"{type(self).__name__} {self.to_json_string()}"


def _exif_transpose(images: Any) -> Any:
    """PIL images (alone or in a list) turned upright by their EXIF orientation tag; the
    opt-in ``LevitImageProcessor(exif_transpose=True)`` (the reference processor ignores the
    tag, so the default does too). Arrays and tensors carry no tag and pass unchanged."""
    try:
        import PIL.Image
        import PIL.ImageOps
    except ImportError:  # pragma: no cover - pillow is a dependency
        return images
    if isinstance(images, PIL.Image.Image):
        return PIL.ImageOps.exif_transpose(images)
    if isinstance(images, list | tuple):
        return [_exif_transpose(image) for image in images]
    return images


class LevitFeatureExtractor(LevitImageProcessor):
    """Deprecated alias of :class:`LevitImageProcessor` (as in transformers)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        warnings.warn(
            "LevitFeatureExtractor is deprecated; use LevitImageProcessor instead.",
            FutureWarning,
            stacklevel=2,
        )
        super().__init__(*args, **kwargs)
