"""An Apache Beam overlay for the Beam tests, kept out of the test venv.

apache-beam 2.77 needs pillow < 13 and protobuf < 7, and the test venv keeps Pillow 13 (the
preprocessing parity tests check Pillow 13's resampling pass order). The overlay is a
``pip install --target`` folder holding exactly what ``levit-tf[beam]`` would add or change in
this venv (resolved with ``pip install --dry-run --report``, installed with ``--no-deps``);
subprocesses put it first on PYTHONPATH, so they run Beam with the venv's TensorFlow. Cached in
the user cache; rebuilt from scratch under CI (``CI=true``), as a fresh install would be.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BEAM = ("apache-beam==2.77.0", "protobuf<7", "pillow<13")  # the [beam] extra, pinned


def _cache_root() -> Path:
    if os.environ.get("CI", "").lower() == "true":
        return Path(tempfile.mkdtemp(prefix="levit-tf-beam-"))
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "levit-tf-tests"


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
                   check=True, capture_output=True, text=True, timeout=900)


def beam_overlay() -> Path:
    """The overlay folder (built on first use): apache_beam and the versions it needs."""
    target = _cache_root() / "beam-overlay-2.77.0"
    stamp = target / ".complete"
    if stamp.exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    with tempfile.TemporaryDirectory() as work:
        report = Path(work) / "report.json"
        _pip("install", "--dry-run", "--report", str(report), *BEAM)
        wanted = [f"{item['metadata']['name']}=={item['metadata']['version']}"
                  for item in json.loads(report.read_text())["install"]]
    _pip("install", "--no-deps", "--target", str(target), *wanted)
    stamp.write_text("\n".join(wanted) + "\n")
    return target


def beam_environment(overlay: Path) -> dict[str, str]:
    """os.environ for a subprocess that imports apache_beam from ``overlay``."""
    path = [str(overlay), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path), "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONWARNINGS": "ignore"}
