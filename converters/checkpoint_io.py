"""Reading PyTorch checkpoints (.safetensors, .pth / .pt / .bin) into numpy state dicts.

safetensors files are read without torch. Pickled checkpoints use ``torch.load(...,
weights_only=True)``: no arbitrary code runs. The file type is sniffed from its first bytes, not
its name.
"""

from __future__ import annotations

import json
import os
import re
import struct
from pathlib import Path

import numpy as np

from levit_tf.converters.errors import ConversionError

StateDict = dict[str, np.ndarray]

# Wrappers seen around the weights: facebookresearch {'model': ...}, training scripts
# {'state_dict': ...}.
_WRAPPER_KEYS = ("model", "state_dict")


def sniff_format(path: Path) -> str:
    """'safetensors', 'torch-zip' or 'torch-pickle' from the file's first bytes."""
    with open(path, "rb") as handle:
        head = handle.read(16)
    if head.startswith(b"PK\x03\x04"):
        return "torch-zip"
    if len(head) >= 9:  # u64 little-endian JSON header length, then the JSON header
        (header_len,) = struct.unpack("<Q", head[:8])
        if 2 <= header_len < 100_000_000 and head[8:9] == b"{":
            return "safetensors"
    if head[:1] == b"\x80":
        return "torch-pickle"
    raise ConversionError(
        f"{path}: not a PyTorch checkpoint (expected safetensors, or a torch.save .pth/.pt/.bin "
        f"file; first bytes {head[:8]!r})")


def read_safetensors(path: Path) -> StateDict:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return dict(load_file(str(path)))
    except (SafetensorError, json.JSONDecodeError, OSError, ValueError) as err:
        raise ConversionError(f"{path}: not a valid safetensors file ({err})") from None
    except TypeError as err:  # e.g. bfloat16, which numpy lacks
        raise ConversionError(f"{path}: unsupported tensor dtype in safetensors ({err})") from None


def read_torch(path: Path) -> StateDict:
    try:
        import torch
    except ImportError:
        raise ConversionError(
            f"{path}: reading .pth/.bin checkpoints needs torch (pip install 'levit-tf[torch]'), "
            "or convert from a .safetensors file") from None
    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises RuntimeError, UnpicklingError, EOFError, ...
        raise ConversionError(f"{path}: {torch_load_reason(err)}") from None
    for key in _WRAPPER_KEYS:
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
            break
    if not isinstance(data, dict) or not data:
        raise ConversionError(f"{path}: holds no state dict (got {type(data).__name__})")
    state: StateDict = {}
    for key, value in data.items():
        if not isinstance(value, torch.Tensor):
            raise ConversionError(
                f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor")
        value = value.detach().cpu()
        state[str(key)] = (value.float() if value.is_floating_point() else value).numpy()
    return state


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_UNPICKLER = re.compile(r"WeightsUnpickler error: (.*?)(?:\. Please use|\n|$)")


def torch_load_reason(err: BaseException) -> str:
    """One line for a failed ``torch.load(weights_only=True)``. torch's own text for a pickle
    holding other objects suggests ``weights_only=False`` (which can run arbitrary code); that
    advice is never passed on: the file is refused, with the offending object named."""
    text = _ANSI.sub("", str(err))
    if "weights only load failed" in text.lower() or "weights_only" in text:
        found = _UNPICKLER.search(text)
        if found:
            detail = found.group(1)
        else:  # torch's other wording: the offending global on a line of its own
            noise = ("weights_only", "weights only", "check the documentation", "trusted source",
                     "safe_globals")
            lines = [line.strip() for line in text.splitlines()
                     if line.strip() and not any(n in line.lower() for n in noise)]
            detail = lines[0] if lines else ""
        detail = detail.split(". Please use")[0].strip().rstrip(".")
        detail = f" ({detail})" if detail else ""
        return ("refused: the pickle holds objects other than tensors"
                f"{detail}, and loading those could run arbitrary code; save a plain state "
                "dict (or .safetensors) instead")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"could not read torch checkpoint ({lines[0] if lines else type(err).__name__})"


def read_state_dict(path: str | os.PathLike) -> StateDict:
    """All tensors of a checkpoint file as numpy arrays, keyed by their PyTorch names."""
    path = Path(path)
    if not path.exists():
        raise ConversionError(f"{path}: no such file or directory")
    if path.is_dir():
        raise ConversionError(f"{path}: is a directory, expected a checkpoint file")
    kind = sniff_format(path)
    state = read_safetensors(path) if kind == "safetensors" else read_torch(path)
    if not state:
        raise ConversionError(f"{path}: the checkpoint holds no tensors")
    return state
