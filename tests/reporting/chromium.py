"""Headless Chromium for the report tests, driven over the DevTools protocol.

The protocol runs on a pipe (--remote-debugging-pipe: Chromium reads commands on fd 3 and writes answers
and events on fd 4, each message JSON ended by a NUL byte), so the browser listens on no port at all and
needs no websocket library. Pages are loaded from file://; the browser is kept off the network by its
flags and by the reports' own Content-Security-Policy, and every request a page makes is recorded so a
test can assert there were none.

Fonts: fontconfig is pointed at a folder holding only the DejaVu files of Debian's fonts-dejavu-core
(symlinks), with hinting and antialiasing fixed, so every font family in the reports' CSS resolves to
the same faces on every machine and screenshots compare.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--hide-scrollbars", "--mute-audio",
         "--force-color-profile=srgb", "--font-render-hinting=none", "--remote-debugging-pipe")
DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
# The files of fonts-dejavu-core: other DejaVu packages (extra: condensed, oblique) must not change the faces.
DEJAVU_CORE = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf",
               "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf")
FONTS_CONF = """<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">
<fontconfig>
  <dir>{fonts}</dir>
  <cachedir>{cache}</cachedir>
  <match target="font">
    <edit name="antialias" mode="assign"><bool>true</bool></edit>
    <edit name="hinting" mode="assign"><bool>false</bool></edit>
    <edit name="rgba" mode="assign"><const>none</const></edit>
  </match>
</fontconfig>
"""


def chromium_binary() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _high(fd: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class DevToolsError(RuntimeError):
    pass


@dataclass
class Page:
    """One tab, attached over a flat session, with what it did while loading."""

    browser: Chromium
    target: str
    session: str
    requests: list[str] = field(default_factory=list)  # every URL the page asked for, itself included
    errors: list[str] = field(default_factory=list)  # console errors, exceptions, CSP reports, failed loads

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.browser.send(method, params, session=self.session)

    def set_viewport(self, width: int, height: int, mobile: bool = False) -> None:
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})

    def load(self, url: str, timeout: float = 30) -> None:
        answer = self.send("Page.navigate", {"url": url})
        if answer.get("errorText"):
            raise DevToolsError(f"{url}: {answer['errorText']}")
        self.browser.wait_event("Page.loadEventFired", self.session, timeout)

    def evaluate(self, expression: str) -> Any:
        """The value of a script run in the page (DevTools runs it whatever the page's CSP says)."""
        answer = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in answer:
            details = answer["exceptionDetails"]
            raise DevToolsError(f"script failed: {details.get('exception', {}).get('description') or details}")
        return answer["result"].get("value")

    def screenshot(self) -> bytes:
        """The viewport as PNG."""
        return base64.b64decode(self.send("Page.captureScreenshot", {"format": "png"})["data"])

    def full_screenshot(self) -> bytes:
        """The whole page as PNG, however long (for looking at, not for comparing)."""
        width, height = self.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
        return base64.b64decode(self.send("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})["data"])

    def close(self) -> None:
        self.browser.send("Target.closeTarget", {"targetId": self.target})


class Chromium:
    """One headless browser for a test module; pages are tabs of it."""

    def __init__(self, binary: str, work: Path) -> None:
        self.work = work
        profile = work / "profile"  # a new, empty profile: --user-data-dir
        fonts = work / "fonts"
        cache = work / "fontcache"
        for folder in (profile, fonts, cache):
            folder.mkdir(parents=True)
        for name in DEJAVU_CORE:
            if (DEJAVU / name).is_file():
                (fonts / name).symlink_to(DEJAVU / name)
        conf = work / "fonts.conf"
        conf.write_text(FONTS_CONF.format(fonts=fonts, cache=cache), encoding="utf-8")
        self.log_path = work / "chromium.log"
        # Pipe ends numbered from 10 up, clear of the 3 and 4 they are moved to in the child.
        commands_in, self._commands = (_high(fd) for fd in os.pipe())  # we write, Chromium reads on fd 3
        self._answers, answers_out = (_high(fd) for fd in os.pipe())  # Chromium writes on fd 4, we read
        env = {k: v for k, v in os.environ.items() if not k.startswith(("http_", "https_", "HTTP_", "HTTPS_"))}
        env |= {"FONTCONFIG_FILE": str(conf), "HOME": str(work), "TZ": "UTC", "LANG": "C.UTF-8"}
        log = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        null = os.open(os.devnull, os.O_RDONLY)
        try:
            # posix_spawn moves the pipe ends to fds 3 and 4 in the child (thread-safe, unlike preexec_fn).
            self.pid = os.posix_spawn(binary, [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"], env,
                                      file_actions=[(os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, log, 1),
                                                    (os.POSIX_SPAWN_DUP2, log, 2),
                                                    (os.POSIX_SPAWN_DUP2, commands_in, 3),
                                                    (os.POSIX_SPAWN_DUP2, answers_out, 4)],
                                      setsid=True)
        finally:
            os.close(log)
            os.close(null)
        os.close(commands_in)
        os.close(answers_out)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []
        self.pages: dict[str, Page] = {}
        self.send("Target.setDiscoverTargets", {"discover": False})

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DevToolsError(f"Chromium did not answer in time; its log:\n{self.log()}")
            ready, _, _ = select.select([self._answers], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._answers, 1 << 20)
            if not chunk:
                raise DevToolsError(f"Chromium closed the DevTools pipe; its log:\n{self.log()}")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        decoded: dict[str, Any] = json.loads(message)
        return decoded

    def _note(self, event: dict[str, Any]) -> None:
        """Keep what a test asserts on: requests and errors, per page."""
        page = self.pages.get(event.get("sessionId", ""))
        if page is not None:
            method, params = event["method"], event.get("params", {})
            if method == "Network.requestWillBeSent":
                page.requests.append(params["request"]["url"])
            elif method == "Network.loadingFailed":
                page.errors.append(f"load failed: {params.get('errorText')} {params.get('blockedReason') or ''}")
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                page.errors.append(f"{params['entry']['source']}: {params['entry']['text']}")
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                page.errors.append(f"console.{params['type']}: {params['args']}")
            elif method == "Runtime.exceptionThrown":
                page.errors.append(f"exception: {params['exceptionDetails'].get('text')}")
        if event["method"].startswith("Page."):  # what wait_event looks for
            self._events.append(event)

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float = 30) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self._read(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise DevToolsError(f"{method}: {answer['error'].get('message')}")
                result: dict[str, Any] = answer.get("result", {})
                return result
            if "method" in answer:
                self._note(answer)

    def wait_event(self, method: str, session: str, timeout: float = 30) -> dict[str, Any]:
        for i, event in enumerate(self._events):
            if event["method"] == method and event.get("sessionId") == session:
                del self._events[i]
                return event
        deadline = time.monotonic() + timeout
        while True:
            event = self._read(deadline)
            if "method" not in event:
                continue
            self._note(event)
            if event["method"] == method and event.get("sessionId") == session:
                self._events.remove(event)
                return event

    def new_page(self, width: int, height: int, mobile: bool = False) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, target, session)
        self.pages[session] = page
        for domain in ("Page", "Runtime", "Log", "Network"):
            page.send(f"{domain}.enable")
        page.set_viewport(width, height, mobile)
        self._events.clear()
        return page

    def close(self) -> None:
        with contextlib.suppress(DevToolsError):  # it may be gone already
            self.send("Browser.close", timeout=5)
        deadline = time.monotonic() + 10
        while os.waitpid(self.pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                break
            time.sleep(0.05)
        os.close(self._commands)
        os.close(self._answers)
