"""The code blocks of the project's Markdown (README.md, docs/**/*.md) as the doc test runs them.

A fenced ``python`` or ``bash`` block runs as it stands. An HTML comment on the line right above
the fence changes that:

- ``<!-- docs-test: skip REASON -->``: not run; the reason is required (network, GPU, a
  server or machines this CI does not have, a package install).
- ``<!-- docs-test: continue -->`` (python only): runs in the same process after the python
  block before it, so a page can explain one script in several steps.

Other fences (``text``, ``kotlin``, output samples) are not code to run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

RUN_LANGUAGES = ("python", "bash")
_FENCE = re.compile(r"^(`{3,})\s*([\w+-]*)\s*$")
_MARKER = re.compile(r"^<!--\s*docs-test:\s*(skip|continue)\b\s*(.*?)\s*-->\s*$")


@dataclass
class Block:
    """One runnable unit: a block, or a python block with the blocks that continue it."""

    path: Path
    line: int  # 1-based line of the first opening fence
    language: str
    code: str
    skip: str | None = None  # the reason, when marked skip

    @property
    def id(self) -> str:
        return f"{self.path.name}:{self.line}"


class MarkerError(ValueError):
    """A marker the doc test cannot honour (a skip without a reason, a dangling continue)."""


def code_blocks(path: Path) -> list[Block]:
    """The runnable units of one Markdown file, in document order."""
    lines = path.read_text().splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        start, ticks, language = i + 1, fence.group(1), fence.group(2).lower()
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == ticks), None)
        if end is None:
            raise MarkerError(f"{path}:{start}: code fence never closed")
        marker = _MARKER.match(lines[i - 1].strip()) if i else None
        code = "\n".join(lines[i + 1:end]) + "\n"
        i = end + 1
        if language not in RUN_LANGUAGES:
            continue
        kind, text = (marker.group(1), marker.group(2)) if marker else (None, "")
        if kind == "skip":
            if not text:
                raise MarkerError(f"{path}:{start}: 'docs-test: skip' needs a reason")
            blocks.append(Block(path, start, language, code, skip=text))
        elif kind == "continue":
            previous = blocks[-1] if blocks else None
            if (language != "python" or previous is None or previous.language != "python"
                    or previous.skip):
                raise MarkerError(f"{path}:{start}: 'docs-test: continue' must follow a "
                                  "python block that runs")
            previous.code += code
        else:
            blocks.append(Block(path, start, language, code))
    return blocks


__all__ = ["RUN_LANGUAGES", "Block", "MarkerError", "code_blocks"]
