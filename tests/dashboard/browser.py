"""Headless Chromium driven over the DevTools protocol: open a page, wait until a script-rendered
page (Streamlit's) has finished, read its text and take a screenshot.

``tests.support.chromium`` takes its screenshot when the page has loaded, which suits static
reports; a Streamlit page draws itself afterwards, from its websocket, so this waits for it.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from tests.support import CHROMIUM_FLAGS, stop_process

#: A Streamlit page has finished when its status widget (running...) is gone and the page has a title.
STREAMLIT_DONE = ("!document.querySelector('[data-testid=\"stStatusWidget\"]') && "
                  "!!document.querySelector('[data-testid=\"stMain\"] h1') && "
                  "!document.querySelector('[data-testid=\"stSkeleton\"]')")


class Browser:
    """One page of a running headless Chromium, over its DevTools websocket."""

    def __init__(self, socket: Any) -> None:
        self.socket, self.ids = socket, itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self.ids)
        self.socket.send(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=30))
            if message.get("id") == number:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str) -> Any:
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def open(self, url: str, done: str = STREAMLIT_DONE, timeout: float = 30.0, settle: float = 1.0) -> str:
        """Go to ``url`` and wait (at most ``timeout`` s) until ``done`` holds for ``settle`` s; the page's text."""
        self.call("Page.navigate", url=url)
        deadline, since = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            time.sleep(0.1)
            if self.evaluate(done):
                since = since or time.monotonic()
                if time.monotonic() - since >= settle:
                    return self.evaluate("document.body.innerText")
            else:
                since = None
        raise AssertionError(f"{url} did not finish within {timeout} s: {self.evaluate('document.body.innerText')[:500]}")

    def screenshot(self, path: Path) -> Path:
        """The window as a PNG at ``path`` (the window, not beyond: resizing to the page slides Streamlit's sidebar)."""
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path


@contextmanager
def chromium_browser(profile_dir: Path, width: int = 1280, height: int = 1000) -> Iterator[Browser]:
    """A headless Chromium (skips the test when it is not installed) and one page of it."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("chromium is not installed (make tools installs Debian's package)")
    process = subprocess.Popen([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", "--remote-debugging-port=0",
                                f"--window-size={width},{height}", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile_dir / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("chromium did not start its DevTools endpoint within 30 s")
            time.sleep(0.05)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
            target = next(t for t in json.load(answer) if t["type"] == "page")
        with connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=10) as socket:
            browser = Browser(socket)
            browser.call("Page.enable")
            yield browser
    finally:
        stop_process(process)
