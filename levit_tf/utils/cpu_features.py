"""The CPU's int8 dot-product capability, which decides whether int8 inference can beat float32.

XNNPACK's int8 GEMMs only run faster than its float32 ones with an int8 dot-product
instruction: VNNI (AVX-512 VNNI or AVX-VNNI) or AMX on x86, SDOT (dotprod) or SMMLA (i8mm) on
ARM. Every quantized speed figure is meaningless without naming which of these the CPU had.
"""

from __future__ import annotations

import platform
from pathlib import Path

# /proc/cpuinfo flag -> the name people know it by, fastest last
X86_INT8_FLAGS = {"avx512_vnni": "AVX-512 VNNI", "avx_vnni": "AVX-VNNI", "amx_int8": "AMX-INT8"}
ARM_INT8_FLAGS = {"asimddp": "dotprod (SDOT)", "i8mm": "i8mm (SMMLA)", "sve2": "SVE2",
                  "sme": "SME"}


def _cpuinfo_field(keys: tuple[str, ...], cpuinfo: Path) -> str | None:
    """The value of the first line of ``cpuinfo`` whose key is one of ``keys`` (the first CPU
    listed); None if there is none or the file is unreadable (non-Linux)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in keys:
            return value.strip()
    return None


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The feature flags of the first CPU listed (x86 'flags', ARM 'Features'); empty if the
    file is unreadable (non-Linux)."""
    return set((_cpuinfo_field(("flags", "Features"), cpuinfo) or "").split())


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name (x86 'model name'), else platform's processor / machine."""
    return (_cpuinfo_field(("model name",), cpuinfo) or platform.processor()
            or platform.machine())


def int8_instructions(flags: set[str] | None = None) -> list[str]:
    """The int8 dot-product instruction sets present, e.g. ['AVX-512 VNNI'] or []."""
    flags = cpu_flags() if flags is None else flags
    known = {**X86_INT8_FLAGS, **ARM_INT8_FLAGS}
    return [name for flag, name in known.items() if flag in flags]


def int8_capability(flags: set[str] | None = None, machine: str | None = None) -> str:
    """One line for reports, e.g. 'x86_64, int8 dot product: AVX-512 VNNI' or
    'x86_64, no int8 dot product (no VNNI / AVX-VNNI / AMX): int8 runs at float32 rates'."""
    machine = machine or platform.machine()
    found = int8_instructions(flags)
    if found:
        return f"{machine}, int8 dot product: {', '.join(found)}"
    wanted = "VNNI / AVX-VNNI / AMX" if machine in ("x86_64", "AMD64") else "dotprod / i8mm"
    return f"{machine}, no int8 dot product (no {wanted}): int8 runs at float32 rates"
