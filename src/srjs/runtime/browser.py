"""Headless Chromium (Debian chromium + playwright-core) running srjs's TF.js pages.

A BrowserSession owns one local StaticServer (js/ mounted at /js/) and one Node process
(js/harness/run-browser.mjs) holding the browser; each call opens a fresh browser context.
Starting Chromium costs about a second, so callers running many checks keep one session open.
"""
from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import tempfile
import threading
from collections import deque
from pathlib import Path
from typing import Callable, Iterator

from srjs import strict_json
from srjs.errors import CheckFailed
from srjs.runtime import env
from srjs.runtime.jobs import check_backends, check_models, write_inputs
from srjs.runtime.result import RunResult, collect
from srjs.runtime.server import StaticServer

BACKENDS = ("cpu", "webgl", "wasm", "webgpu")  # webgpu: SwiftShader here (run-browser.mjs flags)
_START_TIMEOUT_S = 60


class BrowserSession:
    """One headless Chromium plus the local server its pages load from. Use as a context
    manager, or call close()."""

    def __init__(self):
        js = env.require_js_deps("browser")
        script = env.harness("run-browser.mjs")
        command = [env.node(), str(script), "--chromium", env.chromium()]
        self.server = StaticServer()
        self.server.mount(js, prefix="js")
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: deque[str] = deque(maxlen=20)
        self._next_id = 0
        self._lock = threading.Lock()
        self._proc = subprocess.Popen(command, cwd=js, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, bufsize=1)
        # Reader threads: the driver must never block on a full pipe, and reads need timeouts.
        threading.Thread(target=self._pump, args=(self._proc.stdout, self._lines.put, True),
                         daemon=True).start()
        threading.Thread(target=self._pump, args=(self._proc.stderr, self._stderr.append, False),
                         daemon=True).start()
        try:
            hello = self._read(_START_TIMEOUT_S, "starting chromium")
        except Exception:
            self.close()
            raise
        self.version = hello.get("version")

    @staticmethod
    def _pump(stream, sink, mark_end: bool) -> None:
        for line in stream:
            sink(line.rstrip("\n"))
        if mark_end:
            sink(None)

    def _read(self, timeout_s: float, what: str) -> dict:
        while True:
            try:
                line = self._lines.get(timeout=timeout_s)
            except queue.Empty:
                raise CheckFailed(f"browser harness: {what} timed out after {timeout_s:.0f} s") from None
            if line is None:
                tail = " | ".join(s for s in self._stderr if s)[-600:] or "no output"
                raise CheckFailed(f"browser harness exited while {what}: {tail}")
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue  # stray library output on stdout, not a reply

    def call(self, page: str, fn: str, arg: dict, timeout_s: float = 600) -> dict:
        """Open js/harness/`page` (or `page` itself when it is an http:// URL, e.g. a mounted
        package's demo), await window[fn](arg); returns the reply {ok, result | error, log}.
        A page error is a reply, a dead browser raises CheckFailed."""
        url = page if page.startswith("http://") else f"{self.server.url}/js/harness/{page}"
        with self._lock:
            self._next_id += 1
            request = {"id": self._next_id, "url": url,
                       "fn": fn, "arg": arg, "timeout_ms": int(timeout_s * 1000)}
            if self._proc.poll() is not None:
                raise CheckFailed("browser harness is not running (closed or crashed)")
            self._proc.stdin.write(strict_json.dumps(request) + "\n")
            self._proc.stdin.flush()
            # The driver enforces timeout_s itself; the margin covers context start and close.
            while True:
                reply = self._read(timeout_s + 30, f"running {fn}")
                if reply.get("id") == request["id"]:
                    return reply

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self._proc.stdin.close()  # the driver closes Chromium when stdin ends
                self._proc.wait(timeout=15)
            except (subprocess.TimeoutExpired, OSError):
                self._proc.kill()
                self._proc.wait()
        self.server.close()

    def __enter__(self) -> "BrowserSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextlib.contextmanager
def page_job(session: "BrowserSession | None", prefix: str) -> Iterator[tuple["BrowserSession", Path, Callable]]:
    """(session, temp dir, mount) for one page call; everything is undone on exit.

    session None starts (and later closes) a private one. mount(folder, writable=False) serves
    a folder on the session's server and returns its URL; every mount is removed on exit.
    """
    own = session is None
    session = session or BrowserSession()
    mounts: list[str] = []

    def mount(folder: Path, writable: bool = False) -> str:
        mounts.append(session.server.mount(folder, writable=writable))
        return mounts[-1]

    try:
        with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
            yield session, Path(tmp), mount
    finally:
        for url in mounts:
            session.server.unmount(url)
        if own:
            session.close()


def run_browser(models, inputs, backends=("cpu",), warm_runs: int = 3, timeout_s: float = 900,
                session: BrowserSession | None = None) -> list[RunResult]:
    """Every model on every backend in one page of headless Chromium; see `run_tfjs`."""
    models = check_models(models)
    backends = check_backends(backends, BACKENDS, "browser")
    with page_job(session, "srjs-browser-") as (session, tmp, mount):
        (tmp / "out").mkdir()
        inputs_url = mount(tmp)
        out_url = mount(tmp / "out", writable=True)
        job = {
            "models": [{"path": mount(path.parent) + path.name, "format": fmt} for path, fmt in models],
            "backends": backends,
            "inputs": [inputs_url + p.name for p in write_inputs(inputs, tmp)],
            "out_url": out_url,
            "warm_runs": int(warm_runs),
        }
        reply = session.call("page.html", "srjsRun", job, timeout_s)
        reason = "browser harness: " + (reply.get("error") or "no result written")
        return collect(tmp / "out", models, backends, "browser", reason)
