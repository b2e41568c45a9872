"""Emulated Android CPU profiles: the qemu CPU model and the ARM kernel families each must run.

``expected[mode]``: families that must appear in the instruction log for a model of that
quantization mode (XNNPACK picked the ARMv8.2+ kernels the CPU offers); ``forbidden``: families
the CPU does not have (qemu would raise SIGILL, so seeing one means the wrong CPU ran).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Profile:
    name: str
    cpu: str  # qemu -cpu
    description: str
    expected: dict[str, tuple[str, ...]] = field(default_factory=dict)
    forbidden: tuple[str, ...] = ()


PROFILES: dict[str, Profile] = {p.name: p for p in (
    Profile("cortex-a53", "cortex-a53",
            "ARMv8.0-A (NEON; no fp16 arithmetic, no dotprod): low-end Android",
            forbidden=("fp16 FMLA", "SDOT", "UDOT", "SMMLA", "USMMLA", "SVE", "SME")),
    Profile("cortex-a76", "cortex-a76", "ARMv8.2-A + fp16 + dotprod: mid / high-end Android",
            expected={"float16": ("fp16 FMLA",), "int8": ("SDOT",)},
            forbidden=("SMMLA", "USMMLA", "SVE", "SME")),
    Profile("i8mm", "cortex-a710", "ARMv9.0-A cortex-a710 (SVE2, i8mm, bf16, no SME)",
            expected={"float16": ("fp16 FMLA",), "int8": ("SMMLA",)},
            forbidden=("SME",)),
)}
DEFAULT = ("cortex-a53", "cortex-a76", "i8mm")


def parse_profiles(text: str) -> list[Profile]:
    """'cortex-a53,cortex-a76,i8mm' -> profiles; ValueError (one line) naming unknown ones."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in PROFILES]
    if unknown or not names:
        raise ValueError(f"unknown ARM profile(s) {', '.join(unknown) or repr(text)}; "
                         f"choose from {', '.join(PROFILES)}")
    return [PROFILES[name] for name in dict.fromkeys(names)]
