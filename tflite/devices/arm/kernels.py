"""ARM-only kernel families, counted by raw A64 encoding in qemu's ``-d in_asm`` log.

qemu translates a block the first time the guest executes it and logs every instruction word of
the block (``0xADDR:  d503201f  nop``); the disassembler text is ignored (qemu 7.2 prints newer
instructions as ``.byte``), only the 32-bit word is decoded, with masks from the Arm ARM (A64
encoding index). Counts are distinct translated instructions, i.e. code that executed at least
once, not dynamic instruction counts.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

# family -> [(mask, value)]: a word belongs to the family when word & mask == value.
FAMILIES: dict[str, list[tuple[int, int]]] = {
    # FMLA (vector), half precision: 0 Q 0 01110 010 Rm 000011 Rn Rd (ARMv8.2 FEAT_FP16)
    # FMLA (by element), half precision: 0 Q 0 01111 00 L M Rm 0001 H 0 Rn Rd
    "fp16 FMLA": [(0xBFE0FC00, 0x0E400C00), (0xBFC0F400, 0x0F001000)],
    # SDOT (vector): 0 Q 0 01110 10 0 Rm 100101 Rn Rd; (by element): 0 Q 0 01111 10 L M Rm 1110 H 0
    "SDOT": [(0xBFE0FC00, 0x0E809400), (0xBFC0F400, 0x0F80E000)],
    "UDOT": [(0xBFE0FC00, 0x2E809400), (0xBFC0F400, 0x2F80E000)],
    # SMMLA / USMMLA (FEAT_I8MM): 0 1 0 01110 100 Rm 1 0 1 0 0 1 / 1 0 1 1 Rn Rd
    "SMMLA": [(0xFFE0FC00, 0x4E80A400)],
    "USMMLA": [(0xFFE0FC00, 0x4E80AC00)],
    # SVE: op0 (bits 28:25) == 0010; SME: bit 31 == 1 and op0 == 0000 (Armv9 top-level table),
    # plus SMSTART / SMSTOP (MSR SVCR*: 1101 0101 0000 0 011 0100 CRm 011 11111)
    "SVE": [(0x1E000000, 0x04000000)],
    "SME": [(0x9E000000, 0x80000000), (0xFFFFF0FF, 0xD503407F)],
}
# Printed in this order; the ones the issue names first.
ORDER = ("fp16 FMLA", "SDOT", "SMMLA", "SVE", "SME", "UDOT", "USMMLA")
_LINE = re.compile(rb"^\s*0x[0-9a-fA-F]+:\s+([0-9a-fA-F]{8})\b", re.MULTILINE)


def classify(word: int) -> str | None:
    """The family of one A64 instruction word, or None."""
    for family in ORDER:
        if any(word & mask == value for mask, value in FAMILIES[family]):
            return family
    return None


def count_words(words: Iterable[int]) -> Counter:
    """Family -> number of instruction words of that family."""
    counts: Counter = Counter()
    for word in words:
        family = classify(word)
        if family is not None:
            counts[family] += 1
    return counts


def log_words(path: str | Path) -> np.ndarray:
    """The instruction words (uint32, in log order) of a qemu ``-d in_asm`` log."""
    data = Path(path).read_bytes()
    hex_words = b"".join(_LINE.findall(data))
    return np.frombuffer(bytes.fromhex(hex_words.decode()), dtype=">u4").astype(np.uint32)


def count_log(path: str | Path) -> Counter:
    """Family -> count over a qemu ``-d in_asm`` log (vectorized ``count_words``)."""
    words = log_words(path)
    counts: Counter = Counter()
    taken = np.zeros(len(words), dtype=bool)
    for family in ORDER:
        hit = np.zeros(len(words), dtype=bool)
        for mask, value in FAMILIES[family]:
            hit |= (words & np.uint32(mask)) == np.uint32(value)
        hit &= ~taken
        taken |= hit
        if hit.any():
            counts[family] = int(hit.sum())
    return counts


def describe(counts: Counter) -> str:
    """'fp16 FMLA x120, SDOT x64' or 'none'."""
    return ", ".join(f"{f} x{counts[f]}" for f in ORDER if counts.get(f)) or "none"
