"""The documentation site: ``mkdocs build --strict``, then every page in headless Chromium.

The built site is served on 127.0.0.1 and every HTML page of it is loaded in Chromium
(tests/support/chromium.py; no network beyond loopback). A page fails on: an HTTP error or a
failed request, a JavaScript exception or console error, an image that did not load
(``naturalWidth`` 0), an internal link or resource that does not resolve, or a link to an
``#anchor`` the target page lacks. A second test runs the same checker on a small site broken on
purpose and expects each fault to be reported, so the check itself can fail.

Chromium is Debian's ``chromium`` (.ci/run installs it). Where it is missing the render tests
are skipped with that message, except under CI (``CI`` set), where that is a failure.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import urldefrag, urlsplit
from urllib.request import urlopen

import pytest

from tests.support.chromium import Chromium, chromium_binary

ROOT = Path(__file__).resolve().parents[2]
MKDOCS = Path(sys.executable).parent / "mkdocs"
SCREENSHOTS = ("index.html", "guides/tflite/index.html")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site as a fresh clone builds it (no build/ folder from an earlier build); --strict
    turns every mkdocs warning into a failure."""
    shutil.rmtree(ROOT / "build" / "docs-api", ignore_errors=True)
    out = tmp_path_factory.mktemp("site")
    start = time.perf_counter()
    done = subprocess.run([str(MKDOCS), "build", "--strict", "--site-dir", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stderr[-6000:]}"
    print(f"mkdocs build --strict: {time.perf_counter() - start:.1f} s")
    return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[Chromium]:
    binary = chromium_binary()
    if binary is None:
        message = "Chromium not found: apt-get install chromium (or set CHROMIUM)"
        if os.environ.get("CI"):
            pytest.fail(message + "; .ci/run installs it")
        pytest.skip(message)
    chromium = Chromium(binary, tmp_path_factory.mktemp("chromium-profile"))
    yield chromium
    chromium.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        """A browser dropping a connection it no longer needs is not an error here."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def serve(folder: Path) -> tuple[_Server, str]:
    """A static file server for ``folder`` on 127.0.0.1 (a free port), in a thread."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = _Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def _resolves(url: str) -> bool:
    try:
        with urlopen(url, timeout=10) as response:
            return response.status == 200
    except HTTPError:
        return False


def check_site(folder: Path, chromium: Chromium, screenshots: Path | None = None
               ) -> tuple[list[str], dict[str, int]]:
    """Every page of the built site in ``folder``, loaded in Chromium: (problems, counts)."""
    server, base = serve(folder)
    try:
        pages = sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*.html"))
        problems: list[str] = []
        ids: dict[str, set[str]] = {}  # page URL -> its element ids
        links: list[tuple[str, str]] = []  # (page, internal link)
        resources: set[str] = set()
        images = 0
        for page in pages:
            url = base + page
            load = chromium.visit(url)
            problems += [f"{page}: {error}" for error in load.errors]
            problems += [f"{page}: {failed}" for failed in load.failed_requests]
            if page != "404.html" and load.status != 200:
                problems.append(f"{page}: HTTP status {load.status}")
            facts = load.facts
            if not facts:
                continue
            if page != "404.html" and facts["text_length"] < 100:
                problems.append(f"{page}: almost no text ({facts['text_length']} characters)")
            ids[url] = set(facts["ids"])
            for image in facts["images"]:
                images += 1
                if not image["complete"] or image["width"] == 0:
                    problems.append(f"{page}: image did not load: {image['src']}")
            links += [(page, link) for link in facts["links"] if link.startswith(base)]
            resources.update(r for r in facts["resources"] if r.startswith(base))
            if screenshots is not None and page in SCREENSHOTS:
                chromium.screenshot(screenshots / (page.replace("/", "_") + ".png"))
        for page, link in links:
            target, fragment = urldefrag(link)
            if target.endswith("/"):
                target += "index.html"
            if target not in ids and not _resolves(target):
                problems.append(f"{page}: dead link {link}")
            elif fragment and target in ids and fragment not in ids[target]:
                problems.append(f"{page}: link to a missing anchor {link}")
        problems += [f"missing resource {urlsplit(r).path}" for r in sorted(resources)
                     if not _resolves(r)]
        counts = {"pages": len(pages), "internal links": len(links), "images": images,
                  "resources": len(resources)}
        return problems, counts
    finally:
        server.shutdown()
        server.server_close()


def test_every_page_renders_with_its_links_and_images(site: Path, browser: Chromium,
                                                      tmp_path: Path):
    start = time.perf_counter()
    shots = Path(os.environ.get("DOCS_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    problems, counts = check_site(site, browser, screenshots=shots)
    print(f"rendered in Chromium: {counts} in {time.perf_counter() - start:.1f} s")
    assert counts["pages"] >= 20 and counts["images"] >= 3, counts
    assert not problems, "\n".join(problems)


BROKEN_PAGE = """<!doctype html><html><head><title>broken</title></head><body>
<p>{text}</p>
<a href="elsewhere/">a page that does not exist</a>
<a href="index.html#no-such-anchor">an anchor that does not exist</a>
<a href="https://example.com/">external: not followed</a>
<img src="missing.png" alt="an image that does not exist">
<script>undefinedFunction();</script>
</body></html>"""


def test_the_checker_fails_on_dead_links_missing_images_and_broken_pages(browser: Chromium,
                                                                         tmp_path: Path):
    """A site with one of each fault: every one must be reported."""
    (tmp_path / "index.html").write_text(BROKEN_PAGE.format(text="words " * 40))
    problems, counts = check_site(tmp_path, browser)
    report = "\n".join(problems)
    assert counts["pages"] == 1
    assert "dead link" in report and "elsewhere/" in report, report
    assert "missing anchor" in report and "no-such-anchor" in report, report
    assert "image did not load" in report and "missing.png" in report, report
    assert "JavaScript exception" in report and "undefinedFunction" in report, report
    assert "HTTP 404" in report, report  # the image's request
    assert "example.com" not in report, report


def test_readme_links_resolve():
    """The README is read on the forge, outside the site: its relative links and images must
    name files of the repository (pages the build generates are not there)."""
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)\s]+)\)", readme)
    local = [t.split("#")[0] for t in targets if not re.match(r"[a-z]+:", t)]
    assert len(local) >= 10, local
    missing = [t for t in local if t and not (ROOT / t).exists()]
    assert not missing, missing
