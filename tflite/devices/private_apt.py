"""Debian packages fetched without touching the system: a private apt folder + ``dpkg-deb -x``.

``PrivateApt`` runs apt-get / apt-cache on its own sources list, lists, cache and dpkg status
under one folder (nothing on the system changes: no ``dpkg --add-architecture``, no edits of its
sources); apt still checks the archive signatures and every file's hash. The sources are the
system's own Debian entries (their URIs and Signed-By), read by :func:`system_sources`. Used by
the aarch64 emulation runtime (``tflite.arm.runtime``) and the software-Vulkan GPU runtime
(``tflite.lavapipe``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

REFRESH_S = 24 * 3600  # how old the private apt lists may get before a candidate check


@dataclass(frozen=True)
class AptSource:
    """One entry of the system's apt sources: its URIs and Signed-By (raw deb822 lines)."""
    uris: tuple[str, ...]
    suites: tuple[str, ...]
    signed_by: tuple[str, ...] = ()


def os_codename(os_release: Path = Path("/etc/os-release")) -> str | None:
    """The host's ``VERSION_CODENAME`` (e.g. 'bookworm'), None when unknown."""
    try:
        text = os_release.read_text()
    except OSError:
        return None
    match = re.search(r"^VERSION_CODENAME=\"?([^\"\n]*)\"?$", text, re.MULTILINE)
    return (match.group(1) or None) if match else None


def _deb822_sources(text: str) -> list[AptSource]:
    found = []
    for paragraph in re.split(r"\n[ \t]*\n", text):
        fields: dict[str, list[str]] = {}
        key = None
        for line in paragraph.splitlines():
            if line.startswith("#"):
                continue
            if line[:1] in (" ", "\t") and key is not None:
                fields[key].append(line)
            elif ":" in line:
                key, value = line.split(":", 1)
                key = key.strip().lower()
                fields[key] = [value.strip()]
        if "deb" not in " ".join(fields.get("types", [])).split():
            continue
        if " ".join(fields.get("enabled", ["yes"])).strip().lower() == "no":
            continue
        found.append(AptSource(uris=tuple(" ".join(fields.get("uris", [])).split()),
                               suites=tuple(" ".join(fields.get("suites", [])).split()),
                               signed_by=tuple(fields.get("signed-by", []))))
    return found


def _one_line_sources(text: str) -> list[AptSource]:
    found = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        options = re.search(r"\[([^\]]*)\]", line)
        words = re.sub(r"\[[^\]]*\]", " ", line).split()
        if len(words) < 3 or words[0] != "deb":
            continue
        signed = re.search(r"signed-by=(\S+)", options.group(1)) if options else None
        found.append(AptSource(uris=(words[1],), suites=(words[2],),
                               signed_by=(signed.group(1),) if signed else ()))
    return found


def system_sources(etc: Path = Path("/etc/apt")) -> list[AptSource]:
    """Every ``deb`` entry of the system's apt sources (deb822 ``*.sources`` and one-line)."""
    found: list[AptSource] = []
    for path in [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*.list"))]:
        if path.is_file():
            found += _one_line_sources(path.read_text(errors="replace"))
    for path in sorted((etc / "sources.list.d").glob("*.sources")):
        found += _deb822_sources(path.read_text(errors="replace"))
    return found


def debian_sources(sources: list[AptSource], codename: str
                   ) -> tuple[AptSource | None, AptSource | None]:
    """(archive, security): the entries whose suites include ``codename`` and
    ``codename-security`` (None when the system has no such entry)."""
    archive = next((s for s in sources if codename in s.suites and s.uris), None)
    security = next((s for s in sources if f"{codename}-security" in s.suites and s.uris), None)
    return archive, security


def source_entry(source: AptSource, suites: str, arch: str) -> str:
    """One deb822 paragraph: ``source``'s URIs and Signed-By for ``suites`` / ``arch``."""
    lines = ["Types: deb", f"URIs: {' '.join(source.uris)}", f"Suites: {suites}",
             "Components: main", f"Architectures: {arch}"]
    if source.signed_by:
        lines.append("Signed-By: " + "\n".join(source.signed_by))
    return "\n".join(lines) + "\n"


class PrivateApt:
    """apt-get / apt-cache on a private sources list, lists, cache and (empty) dpkg status under
    ``folder``, for ``architectures`` (the first is apt's native one). Failures raise ``error``
    with one line."""

    def __init__(self, folder: Path, architectures: tuple[str, ...] = ("amd64",),
                 error: type[Exception] = RuntimeError, what: str = "the runtime"):
        self.folder = folder
        self.architectures = architectures
        self.error = error
        self.what = what

    def options(self) -> list[str]:
        f = self.folder
        archs = [arg for a in self.architectures for arg in ("-o", f"APT::Architectures::={a}")]
        return ["-o", f"Dir::Etc::SourceList={f / 'none.list'}",
                "-o", f"Dir::Etc::SourceParts={f / 'sources.list.d'}",
                "-o", f"Dir::Etc::Preferences={f / 'preferences'}",
                "-o", f"Dir::Etc::PreferencesParts={f / 'preferences.d'}",
                "-o", f"Dir::State::Lists={f / 'lists'}",
                "-o", f"Dir::State::status={f / 'status'}",
                "-o", f"Dir::Cache={f / 'cache'}",
                "-o", f"APT::Architecture={self.architectures[0]}", *archs,
                "-o", "Quiet=1",
                # root: no drop to _apt, which cannot read a private folder under ~root
                *(["-o", "APT::Sandbox::User=root"] if os.geteuid() == 0 else [])]

    def _run(self, tool: str, args: list[str], what: str, cwd: Path | None = None) -> str:
        if shutil.which(tool) is None:
            raise self.error(f"{tool} not found: {self.what} is made of Debian packages "
                             "fetched by apt")
        try:
            done = subprocess.run([tool, *self.options(), *args], capture_output=True, text=True,
                                  cwd=cwd, timeout=1800)
        except subprocess.TimeoutExpired:
            raise self.error(f"{tool} {what}: timed out") from None
        if done.returncode:
            lines = (done.stderr + done.stdout).strip().splitlines()
            errors = [line for line in lines if line.startswith(("E:", "W:"))]
            first = errors[0] if errors else (lines or [f"exit {done.returncode}"])[-1]
            raise self.error(f"{tool} {what} failed: {' '.join(first.split())}")
        return done.stdout

    def fresh(self) -> bool:
        stamp = self.folder / "updated"
        return stamp.is_file() and time.time() - stamp.stat().st_mtime < REFRESH_S

    def update(self, sources: str, what: str = "", preferences: str = "") -> None:
        """Writes the private deb822 ``sources`` (and apt ``preferences``: pins) and runs
        ``apt-get update`` on them."""
        f = self.folder
        for sub in ("sources.list.d", "preferences.d", "lists/partial", "cache/archives/partial"):
            (f / sub).mkdir(parents=True, exist_ok=True)
        for empty in ("none.list", "preferences", "status"):
            (f / empty).write_text("")
        (f / "sources.list.d" / "levit-tf.sources").write_text(sources)
        (f / "preferences").write_text(preferences)
        self._run("apt-get", ["--error-on=any", "update"], f"update {what}".strip())
        (f / "updated").write_text("")

    def candidates(self, packages: list[str], where: str = "Debian") -> dict[str, str]:
        """``{package: candidate version}``; one line naming the packages without one.
        A package may be ``name/suite`` (that suite's version)."""
        names = [p.split("/", 1)[0] for p in packages]
        out = self._run("apt-cache", ["policy", *names], "policy")
        found = dict(re.findall(r"^(\S+):\n\s+Installed: .*\n\s+Candidate: (\S+)", out,
                                re.MULTILINE))
        missing = [p for p in names if found.get(p, "(none)") == "(none)"]
        if missing:
            raise self.error(f"apt has no candidate for {', '.join(missing)} ({where})")
        return {p: found[p] for p in names}

    def download(self, versions: dict[str, str], dest: Path) -> list[Path]:
        """``apt-get download`` of exactly these versions into ``dest``; the .deb files."""
        dest.mkdir(parents=True, exist_ok=True)
        self._run("apt-get", ["download", *(f"{p}={v}" for p, v in versions.items())],
                  "download " + " ".join(versions), cwd=dest)
        return sorted(dest.glob("*.deb"))


def unpack_deb(deb: Path, root: Path, members: tuple[str, ...] = (),
               error: type[Exception] = RuntimeError) -> None:
    """``dpkg-deb -x`` (or only ``members`` of its data tarball) into ``root``."""
    if shutil.which("dpkg-deb") is None:
        raise error("dpkg-deb not found: install the 'dpkg' package")
    if not members:
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        return
    tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(root), *members], stdin=tar.stdout, check=True)
    tar.wait()


def read_manifest(stamp: Path) -> dict | None:
    """A cache's manifest.json ({"debs": {package: version}, ...}); None when missing or not
    of that shape (the cache is then rebuilt)."""
    try:
        manifest = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and isinstance(manifest.get("debs"), dict) \
        else None


__all__ = ["AptSource", "PrivateApt", "debian_sources", "os_codename", "read_manifest",
           "source_entry", "system_sources", "unpack_deb"]
