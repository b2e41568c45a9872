"""The aarch64 runtime: qemu-user + an arm64 Debian sysroot + the aarch64 LiteRT / numpy wheels.

Made from the package registries on first use and cached in ``$XDG_CACHE_HOME/levit-tf/arm``
(``~/.cache/levit-tf/arm``). The Debian packages come by name through apt-get on a private apt
folder (``arm/apt``: its own sources list, lists, cache and an empty dpkg status, amd64 + arm64),
whose sources are the system's Debian archive and security entries (their URIs and Signed-By) for
the bookworm suites; apt checks the signatures and hashes, nothing on the system changes. The
manifest records each package's resolved version: a new candidate (the lists are refreshed after
a day) rebuilds the runtime.

* ``qemu-aarch64`` (static, from Debian bookworm-backports' ``qemu-user`` >= 8.1: it emulates an
  arm64 ``/proc/cpuinfo`` for the guest, which XNNPACK's cpuinfo needs, and its SME is right).
  A ``qemu-aarch64`` >= 8.1 already on PATH is used instead.
* Debian bookworm (+ updates, security) arm64 ``.deb`` files of python3.11 and its libraries,
  unpacked with ``dpkg-deb -x`` (no root, no binfmt, no chroot).
* ``ai-edge-litert==2.3.0`` (its aarch64 wheels are tagged ``manylinux_2_27``) and numpy,
  fetched with the host's pip (pinned by SHA-256) and unzipped into ``site/``.

The guest python is the sysroot's ``usr/bin/python3.11`` run as ``qemu-aarch64 -L ROOT`` with
``PYTHONPATH=ROOT/site``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from levit_tf.tflite.devices.private_apt import (
    AptSource,
    PrivateApt,
    debian_sources,
    os_codename,
    read_manifest,
    source_entry,
    system_sources,
    unpack_deb,
)

RELEASE = "bookworm"  # the guest is python3.11: Debian bookworm's, whatever the host runs
HOST_ARCH = "amd64"
QEMU = "qemu-user"
QEMU_PACKAGE = f"qemu-user (>= 8.1: apt-get install -t {RELEASE}-backports qemu-user)"
MIN_QEMU = (8, 1)
# python3.11-minimal + libpython3.11-stdlib + libstdc++6, closure minus what python never loads.
SYSROOT_PACKAGES = (
    "libc6", "libgcc-s1", "libstdc++6", "libbz2-1.0", "liblzma5", "zlib1g", "libssl3",
    "libexpat1", "libcrypt1", "libffi8", "libuuid1", "libpython3.11-minimal",
    "python3.11-minimal", "libpython3.11-stdlib",
)
WHEELS = (
    ("ai-edge-litert==2.3.0",
     "853fc608f96da87bd5f3458465dfb9abbf18d5ae6b94eceacead407146f175ae"),
    ("numpy==2.2.6", "b64d8d4d17135e00c8e346e0a738deb17e754230d7e0810ac5012750bbd85a5a"),
)
PLATFORMS = ("manylinux_2_27_aarch64", "manylinux_2_28_aarch64", "manylinux2014_aarch64",
             "manylinux_2_17_aarch64")


class ArmRuntimeError(RuntimeError):
    """The aarch64 runtime could not be prepared (one line: what and what to do)."""


@dataclass(frozen=True)
class Runtime:
    qemu: Path      # qemu-aarch64 executable
    root: Path      # arm64 sysroot (qemu -L)
    qemu_version: tuple[int, int, int]

    @property
    def python(self) -> Path:
        return self.root / "usr" / "bin" / "python3.11"

    @property
    def site(self) -> Path:
        return self.root / "site"

    def command(self, cpu: str, args: list[str], log: Path | None = None,
                write_bytecode: bool = False) -> list[str]:
        """argv running the guest python with ``args`` on qemu CPU model ``cpu``; ``log``: the
        ``-d in_asm`` instruction log."""
        trace = ["-d", "in_asm", "-D", str(log)] if log is not None else []
        bytecode = [] if write_bytecode else ["-E", "PYTHONDONTWRITEBYTECODE=1"]
        return [str(self.qemu), "-cpu", cpu, "-L", str(self.root), *trace, *bytecode,
                "-E", f"PYTHONPATH={self.site}",
                str(self.python), "-s", *args]


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/levit-tf/arm`` (default ``~/.cache/levit-tf/arm``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "levit-tf" / "arm"


def _manifest(versions: dict[str, str]) -> dict:
    """What the cached runtime is made of: package names with their resolved versions, wheels."""
    return {"format": 3, "release": RELEASE, "debs": versions, "wheels": [list(w) for w in WHEELS],
            "platforms": list(PLATFORMS)}


def private_sources(sources: list[AptSource], codename: str) -> str:
    """deb822 text of the private sources: the system's Debian archive (the entry whose suites
    include the host's ``codename``) and security entries, for the :data:`RELEASE` suites the
    runtime is made of: arm64 sysroot from ``RELEASE``, ``-updates``, ``-security``; the host's
    qemu-user from ``-backports``."""
    archive, security = debian_sources(sources, codename)
    if archive is None:
        raise ArmRuntimeError(f"no Debian '{codename}' entry in the apt sources (/etc/apt): the "
                              "aarch64 runtime is made of Debian packages")
    entries = [source_entry(archive, f"{RELEASE} {RELEASE}-updates", "arm64")]
    if security is not None:
        entries.append(source_entry(security, f"{RELEASE}-security", "arm64"))
    entries.append(source_entry(archive, f"{RELEASE}-backports", HOST_ARCH))
    return "\n".join(entries)


def _apt(folder: Path) -> PrivateApt:
    return PrivateApt(folder, (HOST_ARCH, "arm64"), ArmRuntimeError, "the aarch64 runtime")


def _wanted_packages() -> list[str]:
    return [*(f"{name}:arm64" for name in SYSROOT_PACKAGES), QEMU]


def _resolve(apt: PrivateApt, progress: Callable[[str], None]) -> dict[str, str]:
    """apt-get update on the private sources, then the candidate version of every package."""
    codename = os_codename() or RELEASE
    progress(f"  apt-get update (private lists in {apt.folder}: Debian {RELEASE} arm64, "
             f"{RELEASE}-backports {HOST_ARCH})")
    apt.update(private_sources(system_sources(), codename), f"({RELEASE} arm64)")
    versions = apt.candidates(_wanted_packages(), f"Debian {RELEASE}")
    upstream = re.match(r"(?:\d+:)?(\d+)\.(\d+)", versions[QEMU])
    if upstream is None or tuple(int(g) for g in upstream.groups()) < MIN_QEMU:
        raise ArmRuntimeError(f"apt's {QEMU} candidate is {versions[QEMU]}: install "
                              f"{QEMU_PACKAGE}")
    return versions


def qemu_version(qemu: str | Path) -> tuple[int, int, int] | None:
    try:
        out = subprocess.run([str(qemu), "--version"], capture_output=True, text=True,
                             timeout=30).stdout
    except OSError:
        return None
    match = re.search(r"version (\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(g) for g in match.groups()) if match else None  # type: ignore[return-value]


def _system_qemu() -> Path | None:
    """A qemu-aarch64 on PATH recent enough (>= 8.1) to emulate the guest's /proc/cpuinfo."""
    for name in ("qemu-aarch64", "qemu-aarch64-static"):
        found = shutil.which(name)
        version = qemu_version(found) if found else None
        if version and version[:2] >= MIN_QEMU:
            return Path(found)
    return None


def _unpack_deb(deb: Path, root: Path, members: tuple[str, ...] = ()) -> None:
    unpack_deb(deb, root, members, ArmRuntimeError)


def _wheels(root: Path, work: Path, progress: Callable[[str], None]) -> None:
    """The pinned aarch64 wheels, fetched by the host's pip (hash-checked), unzipped in site/."""
    requirements = work / "requirements.txt"
    requirements.write_text("".join(f"{req} --hash=sha256:{sha}\n" for req, sha in WHEELS))
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
               "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp",
               *platforms, "--require-hashes", "-r", str(requirements), "-d", str(work / "whl")]
    progress("  pip download " + " ".join(req for req, _ in WHEELS) + " (aarch64)")
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise ArmRuntimeError(f"could not download the aarch64 wheels: {last}")
    for wheel in sorted((work / "whl").glob("*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(root / "site")
    # zipfile drops the exec bits; shared objects only need to be readable.


def _warm_up(build: Path, system: Path | None, progress: Callable[[str], None]) -> None:
    """Byte-compiles the guest's stdlib and wheels (Debian's .debs ship no .pyc; the guest runs
    with PYTHONDONTWRITEBYTECODE, as it would write through ``-L`` to host paths) with the host
    python when it is 3.11, else the guest's, then checks numpy + LiteRT import in the guest."""
    qemu = system or build / "usr" / "bin" / "qemu-aarch64"
    runtime = Runtime(qemu=qemu, root=build / "root", qemu_version=(0, 0, 0))
    targets = [str(build / "root" / "usr" / "lib" / "python3.11"), str(runtime.site)]
    progress("  byte-compiling the guest's python files")
    compile_args = ["-m", "compileall", "-q", "-j", "0", *targets]
    if sys.version_info[:2] == (3, 11):
        subprocess.run([sys.executable, *compile_args], capture_output=True)
    else:
        subprocess.run(runtime.command("max", compile_args, write_bytecode=True),
                       capture_output=True)
    progress("  checking: import numpy, ai_edge_litert under qemu")
    command = runtime.command("max", ["-c", "import numpy, ai_edge_litert.interpreter"])
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if done.returncode:
        tail = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        raise ArmRuntimeError(f"the aarch64 python does not start under {qemu}: {tail}")



def prepare(cache: Path | None = None,
            progress: Callable[[str], None] = lambda line: print(line, file=sys.stderr)
            ) -> Runtime:
    """The cached runtime, built first if missing, made of other packages or versions.

    The Debian packages come by name through apt-get on private lists in ``cache/apt``; they are
    refreshed when older than a day, and a new candidate version rebuilds the runtime (offline,
    a cached runtime is kept). Raises ``ArmRuntimeError`` with one line when something cannot be
    fetched.
    """
    cache = cache or cache_dir()
    stamp = cache / "manifest.json"
    system = _system_qemu()
    apt = _apt(cache / "apt")
    current = read_manifest(stamp)
    usable = current is not None and current == _manifest(current["debs"])
    if usable and apt.fresh():
        wanted = current
    else:
        try:
            wanted = _manifest(_resolve(apt, progress))
        except ArmRuntimeError as err:
            if not usable:
                raise
            progress(f"  keeping the cached aarch64 runtime: {err}")
            wanted = current
    if current != wanted:
        progress(f"preparing the aarch64 runtime in {cache} (once)")
        cache.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".arm-", dir=cache.parent))
        try:
            build = work / "arm"
            (build / "root" / "site").mkdir(parents=True)
            versions = dict(wanted["debs"])
            qemu_version_ = versions.pop(QEMU)
            if system is None:
                progress(f"  qemu-aarch64 from Debian {RELEASE}-backports {QEMU} {qemu_version_}")
                try:
                    deb, = apt.download({QEMU: qemu_version_}, work / "qemu")
                except ArmRuntimeError as err:
                    raise ArmRuntimeError(f"{err}; or install {QEMU_PACKAGE}") from None
                _unpack_deb(deb, build, ("./usr/bin/qemu-aarch64",))
            progress(f"  arm64 sysroot: {len(versions)} Debian {RELEASE} packages (apt-get "
                     "download)")
            for deb in apt.download(versions, work / "debs"):
                _unpack_deb(deb, build / "root")
            _wheels(build / "root", work, progress)
            _warm_up(build, system, progress)
            (build / "manifest.json").write_text(json.dumps(wanted, sort_keys=True))
            if apt.folder.exists():
                apt.folder.rename(build / "apt")
            if cache.exists():
                shutil.rmtree(cache)
            build.rename(cache)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    bundled = cache / "usr" / "bin" / "qemu-aarch64"
    qemu = system or (bundled if bundled.is_file() else None)
    if qemu is None:  # built earlier with a system qemu that has gone since
        stamp.unlink()
        return prepare(cache, progress)
    version = qemu_version(qemu)
    if version is None:
        raise ArmRuntimeError(f"{qemu} does not run; install {QEMU_PACKAGE}")
    return Runtime(qemu=qemu, root=cache / "root", qemu_version=version)
