"""Mesa's software Vulkan driver (lavapipe) for LiteRT's GPU accelerator on a machine without one.

LiteRT's Linux GPU accelerator is WebGPU (Dawn) over Vulkan, and Dawn needs Mesa >= 25 (Debian
bookworm's 22.3 lacks ``shaderUniform*ArrayDynamicIndexing``). ``prepare`` fetches
``mesa-vulkan-drivers`` from Debian ``bookworm-backports`` and the Vulkan loader ``libvulkan1``
through a private apt folder (:mod:`levit_tf.tflite.devices.private_apt`), unpacks them with
``dpkg-deb -x`` into ``$XDG_CACHE_HOME/levit-tf/lavapipe`` (``~/.cache/levit-tf/lavapipe``) and
writes an ICD file whose ``library_path`` is the unpacked ``libvulkan_lvp.so``. The system's Mesa
is untouched. ``activate`` points this process's Vulkan loader at it (``VK_DRIVER_FILES`` /
``VK_ICD_FILENAMES``) and loads the unpacked ``libvulkan.so.1`` so that Dawn finds it by name.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from levit_tf.tflite.devices.private_apt import (
    PrivateApt,
    debian_sources,
    os_codename,
    read_manifest,
    source_entry,
    system_sources,
    unpack_deb,
)

RELEASE = "bookworm"
ARCH = "amd64"
MESA = "mesa-vulkan-drivers"
LOADER = "libvulkan1"
MIN_MESA = (25, 0)
LIBDIR = Path("usr/lib/x86_64-linux-gnu")


_loaded: list[ctypes.CDLL] = []  # libraries ``activate`` loaded, kept for the process


class LavapipeError(RuntimeError):
    """lavapipe could not be prepared (one line: what and what to do)."""


@dataclass(frozen=True)
class Lavapipe:
    root: Path         # the unpacked packages
    icd: Path          # ICD JSON naming the unpacked libvulkan_lvp.so
    mesa_version: str

    @property
    def loader(self) -> Path:
        return self.root / LIBDIR / "libvulkan.so.1"

    @property
    def driver(self) -> Path:
        return self.root / LIBDIR / "libvulkan_lvp.so"


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/levit-tf/lavapipe`` (default ``~/.cache/levit-tf/lavapipe``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "levit-tf" / "lavapipe"


def private_sources(codename: str) -> str:
    """deb822 text: the system's Debian archive entry for ``RELEASE`` and its backports."""
    archive, _ = debian_sources(system_sources(), codename)
    if archive is None:
        raise LavapipeError(f"no Debian '{codename}' entry in the apt sources (/etc/apt): "
                            "lavapipe is fetched as Debian packages")
    return source_entry(archive, f"{RELEASE} {RELEASE}-backports", ARCH)


def _resolve(apt: PrivateApt, progress: Callable[[str], None]) -> dict[str, str]:
    progress(f"  apt-get update (private lists in {apt.folder}: Debian {RELEASE}, "
             f"{RELEASE}-backports {ARCH})")
    pin = f"Package: *\nPin: release n={RELEASE}-backports\nPin-Priority: 990\n"
    apt.update(private_sources(os_codename() or RELEASE), f"({RELEASE} {ARCH})", pin)
    versions = apt.candidates([MESA, LOADER], f"Debian {RELEASE}-backports")
    if _upstream(versions[MESA]) < MIN_MESA:
        raise LavapipeError(f"apt's {MESA} candidate is {versions[MESA]}; LiteRT's WebGPU "
                            f"needs Mesa >= {'.'.join(map(str, MIN_MESA))} "
                            f"({RELEASE}-backports)")
    return versions


def _upstream(version: str) -> tuple[int, int]:
    match = re.match(r"(?:\d+:)?(\d+)\.(\d+)", version)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def _write_icd(root: Path) -> Path:
    source = json.loads((root / "usr/share/vulkan/icd.d/lvp_icd.json").read_text())
    library = root / LIBDIR / "libvulkan_lvp.so"
    source["ICD"]["library_path"] = str(library)
    icd = root / "lvp_icd.json"
    icd.write_text(json.dumps(source, indent=2) + "\n")
    return icd


def _missing_libraries(root: Path) -> list[str]:
    """Shared libraries the unpacked driver needs that this system lacks (``ldd``)."""
    if shutil.which("ldd") is None:
        return []
    env = {**os.environ, "LD_LIBRARY_PATH": str(root / LIBDIR)}
    out = subprocess.run(["ldd", str(root / LIBDIR / "libvulkan_lvp.so")], capture_output=True,
                         text=True, env=env).stdout
    return re.findall(r"^\s*(\S+) => not found", out, re.MULTILINE)



def prepare(cache: Path | None = None,
            progress: Callable[[str], None] = lambda line: print(line, file=sys.stderr)
            ) -> Lavapipe:
    """The cached lavapipe, fetched and unpacked first when missing or when apt has a new
    candidate (lists refreshed after a day; offline, the cached one is kept). Raises
    ``LavapipeError`` with one line."""
    cache = cache or cache_dir()
    stamp = cache / "manifest.json"
    apt = PrivateApt(cache / "apt", (ARCH,), LavapipeError, "lavapipe")
    current = read_manifest(stamp)
    if current is not None and apt.fresh():
        wanted = current["debs"]
    else:
        try:
            wanted = _resolve(apt, progress)
        except LavapipeError as err:
            if current is None:
                raise
            progress(f"  keeping the cached lavapipe: {err}")
            wanted = current["debs"]
    if current is None or current["debs"] != wanted:
        progress(f"preparing lavapipe (Mesa {wanted[MESA]}) in {cache} (once)")
        cache.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".lavapipe-", dir=cache))
        try:
            root = cache / "root"
            stamp.unlink(missing_ok=True)
            shutil.rmtree(root, ignore_errors=True)
            progress(f"  apt-get download {MESA} {LOADER}; dpkg-deb -x")
            for deb in apt.download(wanted, work):
                unpack_deb(deb, root, error=LavapipeError)
            missing = _missing_libraries(root)
            if missing:
                raise LavapipeError(f"lavapipe needs {', '.join(missing)}, which this system "
                                    f"lacks (install them, or {MESA} itself)")
            _write_icd(root)
            stamp.write_text(json.dumps({"debs": wanted}, sort_keys=True))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return Lavapipe(cache / "root", cache / "root" / "lvp_icd.json", wanted[MESA])


def cached(cache: Path | None = None) -> Lavapipe | None:
    """The prepared lavapipe in ``cache`` (no network), None when there is none."""
    cache = cache or cache_dir()
    manifest = read_manifest(cache / "manifest.json")
    icd = cache / "root" / "lvp_icd.json"
    if manifest is None or not icd.is_file():
        return None
    return Lavapipe(cache / "root", icd, manifest["debs"].get(MESA, "?"))


def activate(lavapipe: Lavapipe, shader_cache: Path | None = None) -> None:
    """Makes this process's Vulkan (so LiteRT's GPU accelerator) use ``lavapipe``; call before
    the first GPU compile. ``shader_cache``: Mesa's shader cache folder (default: Mesa's)."""
    os.environ["VK_DRIVER_FILES"] = str(lavapipe.icd)
    os.environ["VK_ICD_FILENAMES"] = str(lavapipe.icd)  # loaders older than 1.3.207
    if shader_cache is not None:
        os.environ["MESA_SHADER_CACHE_DIR"] = str(shader_cache)
    _loaded.append(ctypes.CDLL(str(lavapipe.loader), mode=ctypes.RTLD_GLOBAL))
    # DEEPBIND: the driver's libLLVM symbols bind to Debian's libLLVM, not to the LLVM copy that
    # TensorFlow's libraries export once imported (without it, the first GPU compile in a
    # process that imported TensorFlow segfaults inside llvmpipe). The Vulkan loader's later
    # dlopen of the same path gets this already-loaded driver.
    _loaded.append(ctypes.CDLL(str(lavapipe.driver), mode=os.RTLD_NOW | os.RTLD_DEEPBIND))


def system_vulkan() -> bool:
    """Whether this process can already reach a Vulkan loader (system, or ``activate``d)."""
    try:
        ctypes.CDLL("libvulkan.so.1")
    except OSError:
        return False
    return True


def use_cached_if_needed() -> Lavapipe | None:
    """Activates the cached lavapipe when this process has no Vulkan loader of its own
    (no download); the one activated, or None."""
    if system_vulkan() or os.environ.get("VK_DRIVER_FILES") or os.environ.get(
            "VK_ICD_FILENAMES"):
        return None
    found = cached()
    if found is not None:
        activate(found)
    return found


__all__ = ["Lavapipe", "LavapipeError", "activate", "cache_dir", "cached", "prepare",
           "system_vulkan", "use_cached_if_needed"]
