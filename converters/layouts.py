"""The three LeViT checkpoint layouts, renamed by structure onto one canonical (HF) naming.

Canonical names are those of HF ``LevitForImageClassificationWithTeacher``:
``levit.patch_embeddings.embedding_layer_{k}.{convolution,batch_norm}.*``,
``levit.encoder.stages.{s}.layers.{l}[.module].<sublayer>.{linear,batch_norm}.*``,
``classifier[_distill].{batch_norm,linear}.*``.

- facebookresearch: ``patch_embed.{0,2,4,6}.{c,bn}``, one flat ``blocks.K`` list (residual blocks
  wrap their module in ``.m``), heads ``head[_dist].{bn,l}``. Blocks are typed by their key names;
  a shrinking attention and the MLP after it end a stage.
- timm (>= 2023): ``stem.conv{k}.{linear,bn}``, ``stages.{s}.blocks.{b}.{attn,mlp}``, the shrinking
  attention at the *start* of stage s as ``stages.{s}.downsample`` (HF puts it at the end of stage
  s-1), heads ``head[_dist].{bn,linear}``. ``levit_conv_*`` stores 1x1 conv weights.
- HF: canonical already (a bare ``LevitModel`` lacks the ``levit.`` prefix).

Every key either gets a canonical name or is reported; nothing is matched by position.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from levit_tf.converters.errors import ConversionError

StateDict = dict[str, np.ndarray]
# canonical name -> (array, source key)
CanonicalState = dict[str, tuple[np.ndarray, str]]

_BN_FIELDS = "weight|bias|running_mean|running_var|num_batches_tracked"


def detect_layout(state: StateDict) -> str:
    """'hf', 'timm' or 'fb' from the stem's key names."""
    keys = list(state)
    if any(k.startswith(("levit.patch_embeddings.", "patch_embeddings.")) for k in keys):
        return "hf"
    if any(k.startswith("stem.conv1.") for k in keys):
        return "timm"
    if any(k.startswith("patch_embed.0.") for k in keys):
        return "fb"
    raise ConversionError(
        "not a LeViT checkpoint: no HF (patch_embeddings.*), timm (stem.conv1.*) or "
        f"facebookresearch (patch_embed.0.*) stem keys; first keys: {keys[:5]}")


def _sub(part: str) -> str:
    """timm / fb short names of a conv/linear + BN pair -> HF's."""
    return {"linear": "linear", "c": "linear", "l": "linear", "bn": "batch_norm"}[part]


def _rename_all(state: StateDict, rename: Callable[[str], str | None]) -> tuple[CanonicalState,
                                                                                 list[str]]:
    canonical: CanonicalState = {}
    unexpected: list[str] = []
    for key, value in state.items():
        name = rename(key)
        if name is None:
            unexpected.append(key)
        else:
            canonical[name] = (value, key)
    return canonical, unexpected


# ----------------------------------------------------------------------------------------- HF
def hf_to_canonical(state: StateDict) -> tuple[CanonicalState, list[str]]:
    def rename(key: str) -> str | None:
        if key.startswith(("classifier.", "classifier_distill.", "levit.")):
            return key
        if key.startswith(("patch_embeddings.", "encoder.")):
            return "levit." + key
        return None

    return _rename_all(state, rename)


# ----------------------------------------------------------------------------------------- timm
_TIMM_STEM = re.compile(rf"^stem\.conv([1-4])\.(linear|bn)\.(weight|{_BN_FIELDS})$")
_TIMM_BLOCK = re.compile(r"^stages\.(\d+)\.blocks\.(\d+)\.(attn|mlp)\.(.+)$")
_TIMM_DOWN = re.compile(r"^stages\.(\d+)\.downsample\.(attn_downsample|mlp)\.(.+)$")
_TIMM_HEAD = re.compile(rf"^(head|head_dist)\.(linear|bn)\.(weight|{_BN_FIELDS})$")
_TIMM_ATTN = {"qkv": "queries_keys_values", "proj.ln": "projection"}
_TIMM_DOWN_ATTN = {"kv": "keys_values", "q.ln": "queries", "proj.ln": "projection"}
_TIMM_MLP = {"ln1": "linear_up", "ln2": "linear_down"}
_LINEAR_BN = re.compile(rf"^(.+)\.(linear|bn)\.(weight|{_BN_FIELDS})$")


def _linear_bn(tail: str, table: dict[str, str]) -> str | None:
    """'qkv.linear.weight' -> 'queries_keys_values.linear.weight' using ``table``."""
    match = _LINEAR_BN.match(tail)
    if not match or match.group(1) not in table:
        return None
    return f"{table[match.group(1)]}.{_sub(match.group(2))}.{match.group(3)}"


def timm_to_canonical(state: StateDict) -> tuple[CanonicalState, list[str]]:
    depth: dict[int, int] = {}
    for key in state:
        if match := _TIMM_BLOCK.match(key):
            stage, block = int(match.group(1)), int(match.group(2))
            depth[stage] = max(depth.get(stage, 0), block + 1)

    def rename(key: str) -> str | None:
        if match := _TIMM_STEM.match(key):
            k, part, field = match.groups()
            inner = "convolution" if part == "linear" else "batch_norm"
            return f"levit.patch_embeddings.embedding_layer_{k}.{inner}.{field}"
        if match := _TIMM_HEAD.match(key):
            head, part, field = match.groups()
            name = "classifier" if head == "head" else "classifier_distill"
            return f"{name}.{_sub(part)}.{field}"
        if match := _TIMM_BLOCK.match(key):
            stage, block, kind, tail = match.groups()
            layer = 2 * int(block) + (kind == "mlp")
            prefix = f"levit.encoder.stages.{stage}.layers.{layer}.module."
            if kind == "attn" and tail in ("attention_biases", "attention_bias_idxs"):
                return prefix + tail
            inner = _linear_bn(tail, _TIMM_ATTN if kind == "attn" else _TIMM_MLP)
            return None if inner is None else prefix + inner
        if match := _TIMM_DOWN.match(key):
            stage, kind, tail = int(match.group(1)), match.group(2), match.group(3)
            if stage == 0 or stage - 1 not in depth:
                return None
            layer = 2 * depth[stage - 1] + (kind == "mlp")
            prefix = f"levit.encoder.stages.{stage - 1}.layers.{layer}."
            if kind == "mlp":
                inner = _linear_bn(tail, _TIMM_MLP)
                return None if inner is None else prefix + "module." + inner
            if tail in ("attention_biases", "attention_bias_idxs"):
                return prefix + tail
            inner = _linear_bn(tail, _TIMM_DOWN_ATTN)
            return None if inner is None else prefix + inner
        return None

    return _rename_all(state, rename)


# ----------------------------------------------------------------------------------------- fb
_FB_STEM = re.compile(rf"^patch_embed\.([0246])\.(c|bn)\.(weight|{_BN_FIELDS})$")
_FB_BLOCK = re.compile(r"^blocks\.(\d+)\.(.+)$")
_FB_HEAD = re.compile(rf"^(head|head_dist)\.(l|bn)\.(weight|{_BN_FIELDS})$")
_FB_ATTN = {"m.qkv": "queries_keys_values", "m.proj.1": "projection"}
_FB_MLP = {"m.0": "linear_up", "m.2": "linear_down"}
_FB_DOWN = {"kv": "keys_values", "q.1": "queries", "proj.1": "projection"}
_FB_LINEAR_BN = re.compile(rf"^(.+)\.(c|bn)\.(weight|{_BN_FIELDS})$")


def _fb_block_kind(tails: list[str]) -> str:
    if any(t.startswith("m.qkv.") for t in tails):
        return "attention"
    if any(t.startswith("m.0.") for t in tails):
        return "mlp"
    if any(t.startswith("kv.") for t in tails):
        return "subsample"
    return "unknown"


def fb_to_canonical(state: StateDict) -> tuple[CanonicalState, list[str]]:
    tails: dict[int, list[str]] = {}
    for key in state:
        if match := _FB_BLOCK.match(key):
            tails.setdefault(int(match.group(1)), []).append(match.group(2))

    # Place each flat block in HF's (stage, layer): a shrinking attention and the MLP after it
    # close a stage.
    place: dict[int, tuple[int, int, str]] = {}
    stage, layer, closing = 0, 0, False
    for index in sorted(tails):
        kind = _fb_block_kind(tails[index])
        place[index] = (stage, layer, kind)
        layer += 1
        if kind == "subsample":
            closing = True
        elif closing:
            stage, layer, closing = stage + 1, 0, False

    def rename(key: str) -> str | None:
        if match := _FB_STEM.match(key):
            conv, part, field = match.groups()
            inner = "convolution" if part == "c" else "batch_norm"
            return f"levit.patch_embeddings.embedding_layer_{int(conv) // 2 + 1}.{inner}.{field}"
        if match := _FB_HEAD.match(key):
            head, part, field = match.groups()
            name = "classifier" if head == "head" else "classifier_distill"
            return f"{name}.{_sub(part)}.{field}"
        match = _FB_BLOCK.match(key)
        if not match:
            return None
        stage, layer, kind = place[int(match.group(1))]
        tail = match.group(2)
        prefix = f"levit.encoder.stages.{stage}.layers.{layer}."
        if kind == "attention" and tail in ("m.attention_biases", "m.attention_bias_idxs"):
            return prefix + "module." + tail[2:]
        if kind == "subsample" and tail in ("attention_biases", "attention_bias_idxs"):
            return prefix + tail
        table = {"attention": _FB_ATTN, "mlp": _FB_MLP, "subsample": _FB_DOWN}.get(kind)
        inner_match = _FB_LINEAR_BN.match(tail)
        if table is None or not inner_match or inner_match.group(1) not in table:
            return None
        module = "" if kind == "subsample" else "module."
        part = _sub(inner_match.group(2))
        return f"{prefix}{module}{table[inner_match.group(1)]}.{part}.{inner_match.group(3)}"

    return _rename_all(state, rename)


TO_CANONICAL = {"hf": hf_to_canonical, "timm": timm_to_canonical, "fb": fb_to_canonical}


def to_canonical(state: StateDict, layout: str | None = None) -> tuple[str, CanonicalState]:
    """Detects (or takes) the layout and renames every key; unknown keys raise one error."""
    layout = layout or detect_layout(state)
    canonical, unexpected = TO_CANONICAL[layout](state)
    if unexpected:
        shown = ", ".join(unexpected[:12]) + (" ..." if len(unexpected) > 12 else "")
        raise ConversionError(
            f"{len(unexpected)} keys do not belong to a {layout} LeViT checkpoint: {shown}")
    return layout, canonical
