"""`srjs serve PKG`: the package folder on http://127.0.0.1 with COOP/COEP headers.

Reuses the browser harness's StaticServer: cross-origin isolation lets the demo's wasm
backend use threads, and nothing listens beyond the loopback interface.
"""
from __future__ import annotations

from pathlib import Path

from srjs.errors import BadInput
from srjs.runtime.server import StaticServer

PREFIX = "package"


def serve(package_dir: Path, port: int = 0) -> tuple[str, StaticServer]:
    """Start serving `package_dir`; returns (demo page URL, server). port 0: a free one.
    Call server.close() to stop."""
    package_dir = Path(package_dir)
    if not (package_dir / "package.json").is_file():
        raise BadInput(f"'{package_dir}' is not a package folder (no package.json); make one with `srjs package`")
    if not 0 <= port <= 65535:
        raise BadInput(f"port {port} is not in 0..65535")
    try:
        server = StaticServer(port=port)
    except OSError as err:
        raise BadInput(f"cannot listen on 127.0.0.1:{port}: {err.strerror or err}") from None
    base = server.mount(package_dir, prefix=PREFIX)
    return base + "demo/index.html", server
