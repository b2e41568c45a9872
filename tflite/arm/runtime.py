"""The aarch64 runtime: qemu-user + an arm64 Debian sysroot + the aarch64 LiteRT / numpy wheels.

Made from the package registries on first use and cached in ``$XDG_CACHE_HOME/levit-tf/arm``
(``~/.cache/levit-tf/arm``); every download is pinned by SHA-256, so a rebuild is byte-identical:

* ``qemu-aarch64`` 10.0 (static, from Debian bookworm-backports' ``qemu-user``; >= 8.1 emulates
  an arm64 ``/proc/cpuinfo`` for the guest, which XNNPACK's cpuinfo needs, and its SME is right).
  A ``qemu-aarch64`` >= 8.1 already on PATH is used instead.
* Debian bookworm arm64 ``.deb`` files of python3.11 and its libraries, unpacked with
  ``dpkg-deb -x`` (no root, no binfmt, no chroot).
* ``ai-edge-litert==2.3.0`` (its aarch64 wheels are tagged ``manylinux_2_27``) and numpy,
  fetched with the host's pip and unzipped into ``site/``.

The guest python is the sysroot's ``usr/bin/python3.11`` run as ``qemu-aarch64 -L ROOT`` with
``PYTHONPATH=ROOT/site``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DEBIAN = "http://deb.debian.org/"
QEMU_DEB = ("debian/pool/main/q/qemu/qemu-user_10.0.2%2bds-2%2bdeb13u1%7ebpo12%2b1_amd64.deb",
            "10a2dec99f2b2d0b1097ff0375aea35b89322d6631fc96700511b02e05bf6fef")
QEMU_PACKAGE = "qemu-user (>= 8.1: apt-get install -t bookworm-backports qemu-user)"
MIN_QEMU = (8, 1)
# python3.11-minimal + libpython3.11-stdlib + libstdc++6, closure minus what python never loads.
SYSROOT_DEBS = (
    ("debian/pool/main/g/glibc/libc6_2.36-9%2bdeb12u14_arm64.deb",
     "01f4330719fd4f65580e16ea5a0527f372fca750e8f588d26deaf09f2d3b1cf4"),
    ("debian/pool/main/g/gcc-12/libgcc-s1_12.2.0-14%2bdeb12u1_arm64.deb",
     "576926b283613db80168ddf76380a3bd877602778cf0d226caa7bfbfa71eacf3"),
    ("debian/pool/main/g/gcc-12/libstdc%2b%2b6_12.2.0-14%2bdeb12u1_arm64.deb",
     "26e138c677a985775331373828a6c286c551ff397cb735d00e2383cb273d1cb2"),
    ("debian/pool/main/b/bzip2/libbz2-1.0_1.0.8-5%2bb1_arm64.deb",
     "d3a96ece03326498b39ff093a76800dfcbcb1d4049d6ae6e9f6fa1aa7a590ad6"),
    ("debian-security/pool/updates/main/x/xz-utils/liblzma5_5.4.1-1%2bdeb12u2_arm64.deb",
     "36358d245f246234721e6c1c2ee5d11a46c1c877023c63f7570df02cd79964f5"),
    ("debian/pool/main/z/zlib/zlib1g_1.2.13.dfsg-1_arm64.deb",
     "52b8b8a145bbe1956bba82034f77022cbef0c3d0885c9e32d9817a7932fe1913"),
    ("debian-security/pool/updates/main/o/openssl/libssl3_3.0.22-1%7edeb12u2_arm64.deb",
     "3d04ecd8d0f57fed50d205abaeedfcc84c1960073ea085719c00add44b0ccd7f"),
    ("debian-security/pool/updates/main/e/expat/libexpat1_2.5.0-1%2bdeb12u5_arm64.deb",
     "4a733e7f636de4a4483e3e5d7b02dc8e788b115361a04dd58df89461ce2ae65a"),
    ("debian/pool/main/libx/libxcrypt/libcrypt1_4.4.33-2_arm64.deb",
     "eea0ad76ea5eb507127fea0c291622ea4ecdbb71c4b9a8ed9c76ae33fc1a0127"),
    ("debian/pool/main/libf/libffi/libffi8_3.4.4-1_arm64.deb",
     "80b5c36177dc0e29d531c7eddbed3cc7355cb490e49f8cfa5959572d161f27b3"),
    ("debian/pool/main/u/util-linux/libuuid1_2.38.1-5%2bdeb12u3_arm64.deb",
     "3b2d19df0f3190108cf54228c4cfc822226c06d8f3615a5ab16a7dffb1f58aed"),
    ("debian-security/pool/updates/main/p/python3.11/"
     "libpython3.11-minimal_3.11.2-6%2bdeb12u9_arm64.deb",
     "dd9847d2f77c5a924b1d3dd953b81f161db9374c94d03b9216191925350928c3"),
    ("debian-security/pool/updates/main/p/python3.11/"
     "python3.11-minimal_3.11.2-6%2bdeb12u9_arm64.deb",
     "617855dbf3299e03873926c75d61feaf3d36924586aecc1951a0b965a95bc694"),
    ("debian-security/pool/updates/main/p/python3.11/"
     "libpython3.11-stdlib_3.11.2-6%2bdeb12u9_arm64.deb",
     "9937cbe3f647aa89a590fec647438ce02098c113d1c6f70e4cb1230c368d42a4"),
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


def _manifest() -> str:
    return json.dumps({"format": 2, "qemu": QEMU_DEB, "debs": SYSROOT_DEBS, "wheels": WHEELS,
                       "platforms": PLATFORMS}, sort_keys=True)


def _download(path: str, sha256: str, dest: Path) -> Path:
    """Fetches ``DEBIAN + path`` into ``dest`` and checks its SHA-256."""
    target = dest / path.rsplit("/", 1)[-1]
    try:
        with urllib.request.urlopen(DEBIAN + path, timeout=120) as response:
            data = response.read()
    except OSError as err:
        raise ArmRuntimeError(f"could not download {DEBIAN + path}: {err}") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise ArmRuntimeError(f"{DEBIAN + path}: SHA-256 {digest}, expected {sha256}")
    target.write_bytes(data)
    return target


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
    """``dpkg-deb -x`` (or only ``members`` of its data tarball) into ``root``."""
    if shutil.which("dpkg-deb") is None:
        raise ArmRuntimeError("dpkg-deb not found: install the 'dpkg' package")
    if not members:
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        return
    tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(root), *members], stdin=tar.stdout, check=True)
    tar.wait()


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
    """The cached runtime, built first if missing or made from other pins.

    Raises ``ArmRuntimeError`` with one line when something cannot be fetched.
    """
    cache = cache or cache_dir()
    stamp = cache / "manifest.json"
    system = _system_qemu()
    if not (stamp.is_file() and stamp.read_text() == _manifest()):
        progress(f"preparing the aarch64 runtime in {cache} (once)")
        cache.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".arm-", dir=cache.parent))
        try:
            build = work / "arm"
            (build / "root" / "site").mkdir(parents=True)
            (work / "debs").mkdir()
            if system is None:
                progress("  qemu-aarch64 10.0.2 (Debian bookworm-backports qemu-user)")
                try:
                    deb = _download(*QEMU_DEB, work / "debs")
                except ArmRuntimeError as err:
                    raise ArmRuntimeError(f"{err}; or install {QEMU_PACKAGE}") from None
                _unpack_deb(deb, build, ("./usr/bin/qemu-aarch64",))
            progress(f"  arm64 sysroot: {len(SYSROOT_DEBS)} Debian bookworm packages")
            for path, sha in SYSROOT_DEBS:
                _unpack_deb(_download(path, sha, work / "debs"), build / "root")
            _wheels(build / "root", work, progress)
            _warm_up(build, system, progress)
            (build / "manifest.json").write_text(_manifest())
            if cache.exists():
                shutil.rmtree(cache)
            build.rename(cache)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    bundled = cache / "usr" / "bin" / "qemu-aarch64"
    qemu = system or (bundled if bundled.is_file() else None)
    if qemu is None:  # built earlier with a system qemu that has gone since
        shutil.rmtree(cache)
        return prepare(cache, progress)
    version = qemu_version(qemu)
    if version is None:
        raise ArmRuntimeError(f"{qemu} does not run; install {QEMU_PACKAGE}")
    return Runtime(qemu=qemu, root=cache / "root", qemu_version=version)
