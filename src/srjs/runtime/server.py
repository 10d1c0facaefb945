"""A small threaded HTTP server on 127.0.0.1 for the browser harnesses.

Folders are mounted under random URL prefixes; pages fetch models, inputs and TF.js from them
and PUT outputs back as raw bytes into writable mounts (no base64 round trip). Every response
carries COOP/COEP headers, so pages are cross-origin isolated and TF.js's wasm backend can use
threads (SharedArrayBuffer).
"""
from __future__ import annotations

import re
import secrets
import shutil
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

_TYPES = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript",
    ".json": "application/json", ".wasm": "application/wasm", ".png": "image/png",
    ".map": "application/json",
}
_ISOLATION = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_UPLOAD_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_MAX_UPLOAD = 2 << 30


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # A page closed mid-transfer (its browser context ended, a timeout fired): nothing is
        # wrong on this side, and a traceback per dropped connection would bury real errors.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class StaticServer:
    """Serve mounted folders on http://127.0.0.1:<port> (0: a free one). Use as a context manager."""

    def __init__(self, port: int = 0):
        self._mounts: dict[str, tuple[Path, bool]] = {}
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", port), _handler_for(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def hosts(self) -> tuple[str, ...]:
        """The Host headers this server answers (lowercase): its own address, by IP or as localhost."""
        port = self._httpd.server_address[1]
        return (f"127.0.0.1:{port}", f"localhost:{port}") + (("127.0.0.1", "localhost") if port == 80 else ())

    def mount(self, directory: Path, *, prefix: str | None = None, writable: bool = False) -> str:
        """Serve `directory` at `prefix` (default: a random one); returns its URL ending in '/'.
        A writable mount also accepts PUT/POST of single files directly inside it."""
        prefix = prefix or f"m/{secrets.token_hex(6)}"
        with self._lock:
            self._mounts[prefix.strip("/")] = (Path(directory).resolve(), writable)
        return f"{self.url}/{prefix.strip('/')}/"

    def unmount(self, url: str) -> None:
        prefix = urlsplit(url).path.strip("/")
        with self._lock:
            self._mounts.pop(prefix, None)

    def resolve(self, url_path: str) -> tuple[Path, bool] | None:
        """(file path, may be written) for a request path, or None outside every mount."""
        path = unquote(url_path).lstrip("/")
        if "\x00" in path:  # no file has one; the OS would raise rather than answer
            return None
        with self._lock:
            mounts = sorted(self._mounts.items(), key=lambda kv: -len(kv[0]))
        for prefix, (root, writable) in mounts:
            if path.startswith(prefix + "/"):
                target = (root / path[len(prefix) + 1:]).resolve()
                if target == root or root in target.parents:
                    # Uploads land directly inside a writable mount, never in a subfolder.
                    return target, writable and target.parent == root
                return None
        return None

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "StaticServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _handler_for(server: StaticServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # pages are chatty; failures reach the page
            pass

        def _reply(self, code: int, body: bytes = b"", ctype: str = "text/plain") -> None:
            self.send_response(code)
            for key, value in _ISOLATION.items():
                self.send_header(key, value)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _refused(self) -> bool:
            """Reply and return True for requests no page of ours makes: a Host other than this
            server (DNS rebinding: a remote page whose name resolves to 127.0.0.1 would otherwise
            read and write here), or a Content-Length that is not a number."""
            host = (self.headers.get("Host") or "").strip().lower()
            if host not in server.hosts:
                self.close_connection = True
                self._reply(400 if not host else 403, b"this server answers only to " + server.hosts[0].encode())
                return True
            length = self.headers.get("Content-Length")
            if length is not None and not length.strip().isdigit():
                self.close_connection = True  # the body's end is unknown: this connection is done
                self._reply(400, b"bad Content-Length")
                return True
            return False

        def do_GET(self) -> None:
            if self._refused():
                return
            found = server.resolve(urlsplit(self.path).path)
            if not found or not found[0].is_file():
                return self._reply(404, b"not found")
            path = found[0]
            self.send_response(200)
            for key, value in _ISOLATION.items():
                self.send_header(key, value)
            self.send_header("Content-Type", _TYPES.get(path.suffix, "application/octet-stream"))
            self.send_header("Content-Length", str(path.stat().st_size))
            self.end_headers()
            if self.command != "HEAD":
                with path.open("rb") as f:
                    shutil.copyfileobj(f, self.wfile, 1 << 20)

        do_HEAD = do_GET

        def do_PUT(self) -> None:
            if self._refused():
                return
            found = server.resolve(urlsplit(self.path).path)
            length = int(self.headers.get("Content-Length") or -1)
            if not found or not found[1] or not _UPLOAD_NAME.match(found[0].name):
                return self._reply(403, b"not a writable file path")
            if not 0 <= length <= _MAX_UPLOAD:
                return self._reply(411, b"Content-Length required")
            target = found[0]
            partial = target.with_name(f".{target.name}.part")
            remaining = length
            with partial.open("wb") as f:
                while remaining:
                    chunk = self.rfile.read(min(remaining, 1 << 20))
                    if not chunk:
                        break
                    f.write(chunk)
                    remaining -= len(chunk)
            if remaining:
                partial.unlink(missing_ok=True)
                return self._reply(400, b"body shorter than Content-Length")
            partial.replace(target)  # readers never see a half-written output
            self._reply(201)

        do_POST = do_PUT

    return Handler
