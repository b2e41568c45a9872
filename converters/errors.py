"""The one error type that conversion raises for bad input."""

from __future__ import annotations


class ConversionError(ValueError):
    """A checkpoint could not be read or does not match the model; the message says why."""


def format_key_report(
    title: str,
    missing: list[str],
    unexpected: list[str],
    mismatched: list[tuple[str, tuple, tuple]],
    limit: int = 12,
) -> str:
    """One message listing missing, unexpected and shape-mismatched keys (truncated lists)."""

    def listing(items: list[str]) -> str:
        shown = ", ".join(items[:limit])
        more = f" ... (+{len(items) - limit} more)" if len(items) > limit else ""
        return shown + more

    lines = [title]
    if missing:
        lines.append(f"  missing ({len(missing)}): {listing(missing)}")
    if unexpected:
        lines.append(f"  unexpected ({len(unexpected)}): {listing(unexpected)}")
    if mismatched:
        shapes = [f"{key} checkpoint {src} vs model {dst}" for key, src, dst in mismatched]
        lines.append(f"  shape mismatch ({len(mismatched)}): {listing(shapes)}")
    return "\n".join(lines)
