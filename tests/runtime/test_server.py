"""srjs.runtime.server: what pages may read and write on 127.0.0.1."""
from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from srjs.runtime.server import StaticServer


def _request(url, method="GET", data=None):
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


@pytest.fixture()
def server():
    with StaticServer() as s:
        yield s


def test_serves_mounted_files_cross_origin_isolated(server, tmp_path):
    (tmp_path / "page.mjs").write_text("export const x = 1;")
    url = server.mount(tmp_path)
    status, headers, body = _request(url + "page.mjs")
    assert (status, body) == (200, b"export const x = 1;")
    assert headers["Content-Type"] == "text/javascript"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    assert url.startswith("http://127.0.0.1:")


def test_reads_stay_inside_the_mount(server, tmp_path):
    (tmp_path / "secret.txt").write_text("no")
    (tmp_path / "pub").mkdir()
    url = server.mount(tmp_path / "pub")
    assert _request(url + "../secret.txt")[0] == 404
    assert _request(url + "%2e%2e/secret.txt")[0] == 404
    assert _request(server.url + "/elsewhere/secret.txt")[0] == 404


def test_uploads_only_into_writable_mounts(server, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "ro").mkdir()
    out = server.mount(tmp_path / "out", writable=True)
    ro = server.mount(tmp_path / "ro")
    payload = bytes(range(256)) * 1000
    assert _request(out + "y.npy", "PUT", payload)[0] == 201
    assert (tmp_path / "out" / "y.npy").read_bytes() == payload
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["y.npy"]  # no .part left
    assert _request(ro + "y.npy", "PUT", b"x")[0] == 403
    assert _request(out + "sub/y.npy", "PUT", b"x")[0] == 403
    assert _request(out + "%2e%2e/ro/y.npy", "PUT", b"x")[0] == 403
    assert not (tmp_path / "ro" / "y.npy").exists()
    server.unmount(out)
    assert _request(out + "y.npy")[0] == 404


def test_a_dropped_connection_logs_nothing(server, tmp_path, capfd):
    import socket
    import struct
    import time

    (tmp_path / "big.bin").write_bytes(bytes(16 << 20))
    url = server.mount(tmp_path)
    path = url[len(server.url):] + "big.bin"
    port = int(server.url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    assert sock.recv(64).startswith(b"HTTP/1.1 200")
    # Linger 0: close() sends a reset, as a browser does when a page goes away mid-download.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    time.sleep(0.5)  # the handler thread hits the reset while writing the rest
    assert _request(url + "big.bin")[0] == 200  # still serving
    assert capfd.readouterr().err == ""
