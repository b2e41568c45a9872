"""Finding files of a model given as a local directory or a HuggingFace hub id."""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

from levit_tf.models.levit.presets import PRESETS

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")


def looks_like_hub_id(source: str | os.PathLike) -> bool:
    """True for 'org/name' or 'name' strings that are not existing local paths."""
    text = str(source)
    return not Path(text).exists() and bool(_HUB_ID.match(text)) and not text.endswith(
        (".pth", ".pt", ".bin", ".safetensors", ".json", ".keras")
    )


def resolve_file(source: str | os.PathLike, filename: str) -> Path:
    """Path of ``filename`` inside a model directory, or inside a hub repo's cached snapshot.

    Hub ids go through ``huggingface_hub.hf_hub_download``, which honours ``HF_HUB_CACHE`` and
    ``HF_HUB_OFFLINE=1``. Raises FileNotFoundError naming what is missing.
    """
    path = Path(source)
    if path.is_dir():
        target = path / filename
        if not target.is_file():
            raise FileNotFoundError(f"{target} does not exist")
        return target
    if path.exists():
        raise FileNotFoundError(f"{path} is a file, expected a model directory holding {filename}")
    if not looks_like_hub_id(source):
        raise FileNotFoundError(f"{source} does not exist")
    return hub_download(str(source), filename)


def close_model_names(name: str) -> list[str]:
    """Preset names and their hub ids close to ``name`` (a typo such as 'levit-999')."""
    candidates = [*PRESETS, *(f"facebook/{p}" for p in PRESETS)]
    lowered = {c.lower(): c for c in candidates}
    if name.lower() in lowered:  # a known name: nothing to suggest
        return []
    matches = difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.6)
    return [lowered[m] for m in matches if lowered[m] != name]


def _suggestion(repo_id: str) -> str:
    close = close_model_names(repo_id)
    return f" (did you mean {' or '.join(close)}?)" if close else ""


def hub_download(repo_id: str, filename: str) -> Path:
    """Downloads (or finds in the local cache) one file of a hub repo."""
    try:
        import huggingface_hub
        from huggingface_hub.utils import (
            EntryNotFoundError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
        )
    except ImportError:
        raise FileNotFoundError(
            f"{repo_id!r} is not a local path, and loading hub ids needs huggingface_hub "
            "(pip install 'levit-tf[hub]')"
        ) from None
    try:
        return Path(huggingface_hub.hf_hub_download(repo_id, filename))
    # LocalEntryNotFoundError subclasses EntryNotFoundError: it must come first
    except LocalEntryNotFoundError:
        raise FileNotFoundError(
            f"{repo_id!r} is not a local path, and {filename!r} of hub repo {repo_id!r} is not "
            f"in the local cache and the hub cannot be reached (offline or HF_HUB_OFFLINE=1)"
            f"{_suggestion(repo_id)}"
        ) from None
    except RepositoryNotFoundError:
        raise FileNotFoundError(
            f"{repo_id!r} is not a local path, and there is no hub repo {repo_id!r} (or it is "
            f"private){_suggestion(repo_id)}") from None
    except EntryNotFoundError:
        raise FileNotFoundError(f"hub repo {repo_id!r} has no file {filename!r}") from None
    except Exception as err:  # offline, network or cache errors of many kinds
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise FileNotFoundError(
            f"could not get {filename!r} of hub repo {repo_id!r} "
            f"(not a local path; not in the cache and no network?): {reason}"
            f"{_suggestion(repo_id)}"
        ) from None
