"""Compiling a .tflite file with LiteRT 2's ``CompiledModel`` on the CPU or the GPU accelerator.

The GPU path asks for the GPU alone first: LiteRT refuses that compile ("Some ops are not
accelerated") when any op is outside the GPU delegate, and then lists those ops on stderr
("Following operations are not supported by GPU delegate:" then ``OP: reason`` lines and
"N operations will run on the GPU, and the remaining M operations will run on the CPU.").
Only then is the model compiled GPU + CPU, the layout an Android app asks for. The fallback ops
come from that LiteRT text, not from a guess about our graph. The Linux wheel's GPU accelerator
is WebGPU (Dawn) over Vulkan; without a Vulkan driver, the compile fails and
:class:`GpuUnavailable` says so in one line.
"""

from __future__ import annotations

import atexit
import dataclasses
import gc
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from levit_tf.utils.native_logs import capture_native_stderr
from levit_tf.utils.optional import require

ACCELERATORS = ("cpu", "gpu")
SIGNATURE = "serving_default"
NO_DETAIL = "LiteRT could not compile it"  # LiteRT's error said no more than that
GPU_HINT = ("`levit-tf gpu-runtime` prepares Mesa's software Vulkan driver (lavapipe) for this "
            "machine")


class GpuUnavailable(RuntimeError):
    """LiteRT's GPU accelerator found no usable GPU (one line)."""


class CpuOptionsRejected(ValueError):
    """The ``cpu_options`` asked for are no LiteRT ``CpuOptions`` fields, or LiteRT compiles the
    file for the CPU without them but not with them."""


@dataclass
class GpuStatus:
    """What LiteRT reported when compiling for the GPU.

    ``gpu_only``: a compile with the GPU accelerator alone succeeded; ``litert_fully_accelerated``:
    ``CompiledModel.is_fully_accelerated()`` of the compiled model; ``fallback``: ``(op, reason)``
    pairs LiteRT listed as unsupported by the GPU; ``gpu_ops`` / ``cpu_ops``: its op counts
    (None when it printed none)."""

    gpu_only: bool
    litert_fully_accelerated: bool
    fallback: list[tuple[str, str]] = field(default_factory=list)
    gpu_ops: int | None = None
    cpu_ops: int | None = None
    adapter: str = ""

    @property
    def fully_accelerated(self) -> bool:
        return self.gpu_only and self.litert_fully_accelerated and not self.fallback

    @property
    def fallback_ops(self) -> list[str]:
        return sorted({op for op, _ in self.fallback})


_UNSUPPORTED = "Following operations are not supported by GPU delegate:"
_COUNTS = re.compile(r"(\d+) operations? will run on the GPU, and the remaining (\d+) "
                     r"operations? will run on the CPU")
_NO_GPU = ("Failed to initialize WebGPU environment", "Failed to get or create delegate WebGPU",
           "Couldn't load Vulkan", "No adapters found")
_ADAPTER = re.compile(r"Selected adapter: (.+?), arch=")


def parse_gpu_log(text: str) -> tuple[list[tuple[str, str]], int | None, int | None, str]:
    """(fallback (op, reason) pairs, GPU op count, CPU op count, adapter name) from LiteRT's
    stderr of a GPU compile."""
    fallback: list[tuple[str, str]] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if _UNSUPPORTED in line:
            for entry in lines[i + 1:]:
                match = re.match(r"([A-Z][A-Z0-9_]*): (.*)", entry.strip())
                if match is None:
                    break
                fallback.append((match.group(1), match.group(2).strip()))
    counts = _COUNTS.search(text)
    adapter = _ADAPTER.search(text)
    return (list(dict.fromkeys(fallback)),
            int(counts.group(1)) if counts else None, int(counts.group(2)) if counts else None,
            adapter.group(1).strip() if adapter else "")


def _litert():
    require("ai_edge_litert", "running .tflite models (LiteRT)")
    from ai_edge_litert import compiled_model, hardware_accelerator, options

    return compiled_model.CompiledModel, hardware_accelerator.HardwareAccelerator, options


_ENVIRONMENT: list = []
_SEEN_ADAPTER: list[str] = []  # the GPU adapter LiteRT named (once per environment)


def environment():
    """The process's one LiteRT ``Environment``, shared by every compiled model (as on Android).
    With one environment per model, a GPU model compiled after another model's environment was
    destroyed failed its first run ("Failed to lock custom tensor buffer")."""
    if not _ENVIRONMENT:
        from ai_edge_litert import compiled_model

        with capture_native_stderr():
            _ENVIRONMENT.append(compiled_model._create_default_environment())
        atexit.register(_release_environment)
    return _ENVIRONMENT[0]


def _release_environment() -> None:
    """At exit: LiteRT's "DestroyAccelerator" lines go to fd 2 when the environment dies; let
    it die here, quietly (models still alive keep it until the interpreter's own teardown)."""
    with capture_native_stderr():
        _ENVIRONMENT.clear()
        gc.collect()
    # models the interpreter's teardown frees later log "DestroyAccelerator" to fd 2 as well:
    # nothing of ours is written after the atexit handlers, so fd 2 goes to /dev/null now
    sys.stderr.flush()
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)


def _unavailable(text: str) -> GpuUnavailable:
    reason = "no Vulkan driver"
    if "Couldn't load Vulkan" in text:
        reason = "no Vulkan loader (libvulkan.so.1)"
    elif "No adapters found" in text:
        reason = "no Vulkan GPU adapter"
    return GpuUnavailable(f"--accelerator gpu: LiteRT's GPU accelerator (WebGPU over Vulkan) "
                          f"found {reason}; {GPU_HINT}")


def compile_model(path: str | os.PathLike, accelerator: str = "cpu", *,
                  enforce_f32: bool = False, num_threads: int = 1,
                  cpu_options: Mapping[str, Any] | None = None):
    """``(CompiledModel, GpuStatus | None)`` for ``path``; the status only for the GPU.

    CPU: XNNPACK with ``num_threads``; ``cpu_options``: further fields of LiteRT's
    ``CpuOptions`` (``xnnpack_flags``, ``enable_ynnpack``), LiteRT's defaults when None. GPU: GPU
    alone if LiteRT accepts it, else GPU + CPU (``status.fallback`` names the ops).
    ``enforce_f32``: GPU computes in float32 instead of LiteRT's default float16. Raises
    ``GpuUnavailable`` when there is no GPU, ``ValueError`` when LiteRT cannot load the file or
    compile it with these options."""
    if accelerator not in ACCELERATORS:
        raise ValueError(f"accelerator must be one of {', '.join(ACCELERATORS)}, got "
                         f"{accelerator!r}")
    compiled_model, accel, options = _litert()
    cpu = _cpu_options(options, num_threads, cpu_options or {})
    if accelerator == "cpu":
        with capture_native_stderr() as log:
            try:
                model = compiled_model.from_file(
                    str(path), environment=environment(),
                    options=options.Options(accel.CPU, cpu_options=cpu))
            except RuntimeError as err:
                reason = _first_error(str(err), log.text)
                if cpu_options and _compiles_for_cpu(path, num_threads):
                    detail = "" if reason == NO_DETAIL else f" ({reason})"
                    raise CpuOptionsRejected(f"LiteRT compiles it for the CPU, but not with "
                                             f"CpuOptions {dict(cpu_options)}{detail}") from None
                raise ValueError(reason) from None
        return model, None
    gpu = options.GpuOptions(enforce_f32=enforce_f32)
    with capture_native_stderr() as log:
        try:
            model = compiled_model.from_file(str(path), environment=environment(),
                                             options=options.Options(
                                                 accel.GPU, cpu_options=cpu, gpu_options=gpu))
            gpu_only = True
        except RuntimeError:
            model = None
    if model is None:
        first = log.text
        if any(sign in first for sign in _NO_GPU):
            raise _unavailable(first)
        if "Some ops are not accelerated" not in first and _UNSUPPORTED not in first:
            raise ValueError(_first_error("", first))
        with capture_native_stderr() as log:
            try:
                model = compiled_model.from_file(str(path), environment=environment(),
                                                 options=options.Options(
                                                     accel.GPU | accel.CPU, cpu_options=cpu,
                                                     gpu_options=gpu))
            except RuntimeError as err:
                raise ValueError(_first_error(str(err), log.text)) from None
        gpu_only = False
        text = first + log.text
    else:
        text = log.text
    fallback, gpu_ops, cpu_ops, adapter = parse_gpu_log(text)
    # the shared environment logs its GPU adapter once, at its first GPU compile
    _SEEN_ADAPTER[:] = [adapter or (_SEEN_ADAPTER or [""])[0]]
    adapter = _SEEN_ADAPTER[0]
    return model, GpuStatus(gpu_only, bool(model.is_fully_accelerated()), fallback, gpu_ops,
                            cpu_ops, adapter)


def _compiles_for_cpu(path: str | os.PathLike, num_threads: int) -> bool:
    """Whether LiteRT compiles ``path`` for the CPU with its default options."""
    try:
        compile_model(path, "cpu", num_threads=num_threads)
    except ValueError:
        return False
    return True


def _cpu_options(options, num_threads: int, extra: Mapping[str, Any]):
    """LiteRT's ``CpuOptions`` with ``num_threads`` and ``extra``; a field LiteRT does not have
    is a CpuOptionsRejected naming it."""
    if "num_threads" in extra:
        raise CpuOptionsRejected("cpu_options: pass num_threads as its own argument")
    known = {f.name for f in dataclasses.fields(options.CpuOptions)} - {"num_threads"}
    unknown = sorted(set(extra) - known)
    if unknown:
        raise CpuOptionsRejected(f"cpu_options: LiteRT's CpuOptions has no field "
                                 f"{unknown[0]!r} (it has {', '.join(sorted(known))})")
    return options.CpuOptions(num_threads=num_threads, **extra)


def _first_error(message: str, log: str) -> str:
    """One line out of LiteRT's multi-line error text and its stderr."""
    lines = [line.strip(" └") for line in (message + "\n" + log).splitlines()]
    useful = [line for line in lines if line and not line.startswith(("INFO", "WARNING", "I0"))
              and not line.startswith("ERROR: [")]
    return (useful or [NO_DETAIL])[0]


__all__ = ["ACCELERATORS", "GPU_HINT", "CpuOptionsRejected", "GpuStatus", "GpuUnavailable",
           "compile_model", "parse_gpu_log"]
