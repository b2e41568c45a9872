"""Finding files of a model given as a local directory or a HuggingFace hub id."""

from __future__ import annotations

import os
import re
from pathlib import Path

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


def hub_download(repo_id: str, filename: str) -> Path:
    """Downloads (or finds in the local cache) one file of a hub repo."""
    try:
        import huggingface_hub
        from huggingface_hub.utils import EntryNotFoundError, RepositoryNotFoundError
    except ImportError:
        raise FileNotFoundError(
            f"{repo_id!r} is not a local path, and loading hub ids needs huggingface_hub "
            "(pip install 'levit-tf[hub]')"
        ) from None
    try:
        return Path(huggingface_hub.hf_hub_download(repo_id, filename))
    except (EntryNotFoundError, RepositoryNotFoundError):
        raise FileNotFoundError(f"hub repo {repo_id!r} has no file {filename!r}") from None
    except Exception as err:  # offline, network or cache errors of many kinds
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise FileNotFoundError(
            f"could not get {filename!r} of hub repo {repo_id!r} "
            f"(not a local path; not in the cache and no network?): {reason}"
        ) from None
