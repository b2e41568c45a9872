"""Headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``).

No extra package and no port: Chromium reads protocol messages from fd 3 and writes its replies
and events to fd 4, each a JSON object ended by a NUL byte. Host resolution is mapped to
nowhere except 127.0.0.1, so a page can only reach the loopback server the test runs.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOOPBACK_ONLY = "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"


def chromium_binary() -> str | None:
    """The Chromium to use: $CHROMIUM, else ``chromium`` / ``chromium-browser`` on PATH."""
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which(
        "chromium-browser")


def _high_fd(fd: int) -> int:
    """A duplicate of ``fd`` numbered >= 10, so that placing it at 3 or 4 clobbers nothing."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


@dataclass
class PageLoad:
    """What one navigation produced."""

    url: str
    status: int | None = None  # the document's HTTP status
    failed_requests: list[str] = field(default_factory=list)  # "url: reason"
    errors: list[str] = field(default_factory=list)  # JS exceptions, console errors
    facts: dict[str, Any] = field(default_factory=dict)  # what COLLECT returned


# Run in the page after its load event: every link, resource and image, and every id.
COLLECT = """(() => {
  const abs = (v) => v ? new URL(v, document.baseURI).href : null;
  return {
    title: document.title,
    text_length: document.body ? document.body.innerText.trim().length : 0,
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    resources: [...document.querySelectorAll('link[href]')].map(l => l.href)
      .concat([...document.querySelectorAll('script[src]')].map(s => s.src)),
    images: [...document.images].map(i => ({src: abs(i.getAttribute('src')),
                                            complete: i.complete, width: i.naturalWidth})),
    ids: [...document.querySelectorAll('[id]')].map(e => e.id),
  };
})()"""


class Chromium:
    """One headless browser with one tab, for visiting pages one after another."""

    def __init__(self, binary: str, profile: Path, timeout: float = 30.0):
        commands_r, commands_w = os.pipe()  # we write, Chromium reads (its fd 3)
        events_r, events_w = os.pipe()  # Chromium writes (its fd 4), we read
        commands_r, events_w = _high_fd(commands_r), _high_fd(events_w)

        def place_pipes() -> None:  # in the child, before exec
            os.dup2(commands_r, 3)
            os.dup2(events_w, 4)

        self.timeout = timeout
        self.process = subprocess.Popen(
            [binary, "--headless=new", "--remote-debugging-pipe", "--no-sandbox",
             "--disable-gpu", "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--disable-background-networking", "--mute-audio",
             f"--host-resolver-rules={LOOPBACK_ONLY}", f"--user-data-dir={profile}",
             "--window-size=1280,900", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            pass_fds=(3, 4), preexec_fn=place_pipes)
        os.close(commands_r)
        os.close(events_w)
        self._out = os.fdopen(commands_w, "wb", buffering=0)
        self._in = os.fdopen(events_r, "rb", buffering=0)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target,
                                 flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.call(f"{domain}.enable", session=True)

    # -- protocol -------------------------------------------------------------------------
    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self._in], [], [], remaining)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = self._in.read(65536)
            if not chunk:
                stderr = self.process.stderr.read().decode(errors="replace")[-2000:]
                raise RuntimeError(f"Chromium closed its pipe (exit {self.process.poll()}): "
                                   f"{stderr}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, session: bool = False, **params: Any) -> dict:
        """Sends one command and returns its result; events that arrive meanwhile are kept."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        self._out.write(json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._events.append(reply)

    def _wait_for(self, method: str) -> None:
        deadline = time.monotonic() + self.timeout
        while not any(event.get("method") == method for event in self._events):
            self._events.append(self._read_message(deadline))

    # -- pages ------------------------------------------------------------------------------
    def visit(self, url: str) -> PageLoad:
        """Loads ``url``, waits for its load event, and reports what went wrong on the way."""
        self._events.clear()
        load = PageLoad(url)
        navigation = self.call("Page.navigate", session=True, url=url)
        if navigation.get("errorText"):
            load.errors.append(f"navigation failed: {navigation['errorText']}")
            return load
        self._wait_for("Page.loadEventFired")
        value = self.call("Runtime.evaluate", session=True, expression=COLLECT,
                          returnByValue=True)["result"]["value"]
        load.facts = value
        for event in self._events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Network.responseReceived":
                response = params["response"]
                if params.get("type") == "Document" and response["url"].split("#")[0] == \
                        url.split("#")[0]:
                    load.status = response["status"]
                if response["status"] >= 400:
                    load.failed_requests.append(f"{response['url']}: HTTP {response['status']}")
            elif method == "Network.loadingFailed" and not params.get("canceled"):
                load.failed_requests.append(f"request {params['requestId']}: "
                                            f"{params.get('errorText')}")
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                text = details.get("exception", {}).get("description") or details.get("text")
                load.errors.append(f"JavaScript exception: {text}")
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                entry = params["entry"]
                load.errors.append(f"console error: {entry.get('text')} {entry.get('url', '')}")
        return load

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", session=True, format="png")["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.call("Browser.close")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._out.close()
        self._in.close()
        self.process.stderr.close()


__all__ = ["COLLECT", "Chromium", "PageLoad", "chromium_binary"]
