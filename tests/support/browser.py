"""Debian's chromium driven by playwright-core (``tests/browser/driver.mjs``) for the browser
tests (tests/e2e/test_ohif.py, tests/e2e/test_console.py): one page, one JSON command per line.

Chromium, the node packages and OHIF are installed by ``.ci/run`` (``tests/browser/setup.sh``):
when one is missing these tests fail, never skip.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

__all__ = [
    "ARTIFACTS_ENV",
    "BROWSER_DIR",
    "CANVAS_NOT_BLANK",
    "CANVAS_STATS",
    "CHROMIUM",
    "MIN_STDDEV",
    "SETUP_HINT",
    "WAIT_MS",
    "Browser",
    "BrowserError",
    "artifacts_dir",
    "require_browser",
    "sign_in_at_provider",
]

BROWSER_DIR = Path(__file__).resolve().parents[1] / "browser"
ARTIFACTS_ENV = "PACSFLOW_TEST_ARTIFACTS"
_ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"  # .gitignore'd
CHROMIUM = Path("/usr/bin/chromium")
DRIVER = BROWSER_DIR / "driver.mjs"
SETUP_HINT = "install it as .ci/run does: apt-get install -y chromium; bash tests/browser/setup.sh"
WAIT_MS = 30_000  # any single wait in the browser

# Gray-level statistics of the middle of the viewport's canvas (the image is fitted and centred
# there; the margins around it are black, so the whole canvas of a uniform image still varies):
# a centred square half as wide as the canvas's smaller side, every 2nd pixel of every 2nd row.
CANVAS_STATS = """
function canvasStats() {
  const canvas = document.querySelector('canvas.cornerstone-canvas');
  if (!canvas || !canvas.width || !canvas.height) return null;
  const context = canvas.getContext('2d');
  if (!context) return { error: 'the viewport canvas has no 2d context' };
  const side = Math.max(1, Math.floor(Math.min(canvas.width, canvas.height) / 2));
  const left = Math.floor((canvas.width - side) / 2);
  const top = Math.floor((canvas.height - side) / 2);
  const data = context.getImageData(left, top, side, side).data;
  let n = 0, sum = 0, squares = 0;
  const levels = new Set();
  for (let y = 0; y < side; y += 2) {
    for (let x = 0; x < side; x += 2) {
      const i = (y * side + x) * 4;
      const gray = (data[i] + data[i + 1] + data[i + 2]) / 3;
      sum += gray;
      squares += gray * gray;
      levels.add(Math.round(gray));
      n += 1;
    }
  }
  const mean = sum / n;
  const stddev = Math.sqrt(Math.max(squares / n - mean * mean, 0));
  return { width: canvas.width, height: canvas.height, side, samples: n, mean, stddev,
           levels: levels.size };
}
"""
CANVAS_NOT_BLANK = CANVAS_STATS + "const s = canvasStats(); return s && s.stddev > arg && s;"
MIN_STDDEV = 10.0  # gray levels (0-255); a blank or uniform canvas has ~0


def require_browser() -> None:
    """Fail (never skip) with the setup hint when chromium or playwright-core is missing."""
    assert CHROMIUM.is_file(), f"chromium is not installed at {CHROMIUM}; {SETUP_HINT}"
    assert (BROWSER_DIR / "node_modules" / "playwright-core").is_dir(), (
        f"playwright-core is not installed; {SETUP_HINT}"
    )


def artifacts_dir(test: str) -> Path:
    """Where the browser test ``test`` leaves its screenshots and logs, emptied first.

    ``$PACSFLOW_TEST_ARTIFACTS/<test>`` (the directory a CI job keeps), else
    ``test-artifacts/<test>`` in the checkout.
    """
    root = Path(os.environ.get(ARTIFACTS_ENV) or _ARTIFACTS)
    found = root / re.sub(r"[^\w.-]+", "_", test)
    shutil.rmtree(found, ignore_errors=True)
    found.mkdir(parents=True)
    return found


def sign_in_at_provider(browser: Browser, issuer: str) -> None:
    """Log in at the test OpenID provider's page (tests/oidc), up to its consent page."""
    browser.wait_for("return location.href.startsWith(arg) && !!document.forms[0];", issuer)
    browser.call("fill", selector="input[name=login]", value="radiologist")
    browser.call("fill", selector="input[name=password]", value="any")
    browser.call("press", selector="input[name=password]", key="Enter")
    consent = "return location.href.startsWith(arg) && !!document.querySelector('button');"
    browser.wait_for(consent, issuer)


class BrowserError(AssertionError):
    """A browser operation failed or timed out."""


class Browser:
    """``node tests/browser/driver.mjs``: one chromium page, one JSON command per line."""

    def __init__(self, artifacts: Path) -> None:
        self.artifacts = artifacts
        artifacts.mkdir(parents=True, exist_ok=True)
        node = shutil.which("node")
        assert node, f"node is not installed; {SETUP_HINT}"
        self.stderr = (artifacts / "driver-stderr.log").open("wb")
        self.process = subprocess.Popen(
            [node, str(DRIVER), str(CHROMIUM), str(artifacts)],
            cwd=BROWSER_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            encoding="utf-8",
        )
        self.answers: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.next_id = 1
        hello = self._answer(0, 90)
        self.version = hello["value"]["version"]

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with contextlib.suppress(json.JSONDecodeError):
                self.answers.put(json.loads(line))
        self.answers.put(None)  # the driver exited

    def _answer(self, id_: int, seconds: float) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while True:
            try:
                answer = self.answers.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.close()
                raise BrowserError(f"the browser did not answer in {seconds:.0f} s") from None
            if answer is None:
                self.answers.put(None)  # for any later call too
                self.stderr.flush()
                log = (self.artifacts / "driver-stderr.log").read_text(errors="replace")
                raise BrowserError(f"the browser driver exited: {log[-3000:]}")
            if answer.get("id") == id_:
                return answer

    def call(self, op: str, **args: Any) -> Any:
        """Run one operation; its value, or BrowserError (bounded by its own timeout + 30 s)."""
        id_, self.next_id = self.next_id, self.next_id + 1
        args.setdefault("timeout", WAIT_MS)
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps({"id": id_, "op": op, **args}) + "\n")
            self.process.stdin.flush()
        except (OSError, ValueError) as exc:  # its pipe is broken or already closed
            raise BrowserError(f"the browser driver is gone: {exc!r}") from exc
        answer = self._answer(id_, args["timeout"] / 1000 + 30)
        if not answer["ok"]:
            raise BrowserError(f"{op} failed: {answer['error']}")
        return answer["value"]

    def wait_for(self, expression: str, arg: Any = None, timeout: int = WAIT_MS) -> Any:
        return self.call("waitFor", expression=expression, arg=arg, timeout=timeout)

    def evaluate(self, expression: str, arg: Any = None) -> Any:
        return self.call("evaluate", expression=expression, arg=arg)

    def requests(self) -> list[dict[str, Any]]:
        return list(self.call("requests", timeout=10_000))

    def save(self, name: str) -> None:
        """A screenshot and the logs, as ``name``.* in the artifacts dir (best effort)."""
        with contextlib.suppress(BrowserError):
            self.call("screenshot", path=str(self.artifacts / f"{name}.png"), timeout=15_000)
        for what in ("requests", "events"):
            with contextlib.suppress(BrowserError):
                value = self.call(what, timeout=10_000)
                text = json.dumps(value, indent=1, ensure_ascii=False)
                (self.artifacts / f"{name}.{what}.json").write_text(text)

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                assert self.process.stdin is not None
                self.process.stdin.write(json.dumps({"id": -1, "op": "close"}) + "\n")
                self.process.stdin.close()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.stderr.close()
