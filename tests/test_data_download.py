"""Verified downloads against a local HTTP server on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from typing import ClassVar

import pytest

from lsalsa.errors import InputError
from lsalsa.workflow.data import download, sha256_file

PAYLOAD = bytes(range(256)) * 64
GOOD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self):
        type(self).hits.append(self.path)
        if self.path == "/good.bin":
            body, declared = PAYLOAD, len(PAYLOAD)
        elif self.path == "/corrupt.bin":  # same length, one byte flipped
            body = bytearray(PAYLOAD)
            body[100] ^= 0xFF
            body, declared = bytes(body), len(PAYLOAD)
        elif self.path == "/truncated.bin":  # promises the whole file, sends half
            body, declared = PAYLOAD[: len(PAYLOAD) // 2], len(PAYLOAD)
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(declared))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_good_download_is_verified_and_cached(server, tmp_path):
    dest = tmp_path / "cache" / "good.bin"
    _Handler.hits.clear()
    assert download(f"{server}/good.bin", dest, GOOD_SHA) == dest
    assert dest.read_bytes() == PAYLOAD and sha256_file(dest) == GOOD_SHA
    download(f"{server}/good.bin", dest, GOOD_SHA.upper())  # already there: no second request
    assert _Handler.hits == ["/good.bin"]
    assert leftovers(dest.parent) == ["good.bin"]


def test_checksum_mismatch_keeps_nothing(server, tmp_path):
    dest = tmp_path / "cache" / "file.bin"
    with pytest.raises(InputError, match="checksum mismatch") as err:
        download(f"{server}/corrupt.bin", dest, GOOD_SHA)
    assert "\n" not in str(err.value)
    assert leftovers(dest.parent) == []


def test_truncated_download_keeps_nothing(server, tmp_path):
    dest = tmp_path / "cache" / "file.bin"
    with pytest.raises(InputError, match="truncated"):
        download(f"{server}/truncated.bin", dest, GOOD_SHA)
    assert leftovers(dest.parent) == []


def test_corrupt_cached_copy_is_replaced(server, tmp_path):
    dest = tmp_path / "file.bin"
    dest.write_bytes(b"stale and wrong")
    download(f"{server}/good.bin", dest, GOOD_SHA)
    assert dest.read_bytes() == PAYLOAD


def test_corrupt_cached_copy_is_removed_even_when_the_download_fails(server, tmp_path):
    dest = tmp_path / "file.bin"
    dest.write_bytes(b"stale and wrong")
    with pytest.raises(InputError):
        download(f"{server}/truncated.bin", dest, GOOD_SHA)
    assert leftovers(tmp_path) == []


def test_http_error_is_one_line(server, tmp_path):
    with pytest.raises(InputError, match="cannot download") as err:
        download(f"{server}/missing.bin", tmp_path / "x.bin", GOOD_SHA)
    assert "\n" not in str(err.value)
    assert leftovers(tmp_path) == []


def _one_reply_server(reply: bytes) -> str:
    """A server that answers one request with ``reply`` verbatim, however malformed."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer():
        with listener:
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(reply)

    threading.Thread(target=answer, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/f.bin"


@pytest.mark.parametrize("reply, message", [
    (b"garbage\r\n\r\n", "cannot download .*BadStatusLine: garbage\\)$"),
    (b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 200 + b"\r\n", "more than 100 headers"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * 70000 + b"\r\n",
     "download of .* failed: malformed HTTP response \\(LineTooLong"),  # in the read loop
])
def test_malformed_http_response_is_one_line(tmp_path, reply, message):
    # http.client.HTTPException is no OSError: it escaped as a traceback.
    with pytest.raises(InputError, match=message) as err:
        download(_one_reply_server(reply), tmp_path / "x.bin", GOOD_SHA, timeout=10)
    assert "\n" not in str(err.value) and "\r" not in str(err.value)
    assert leftovers(tmp_path) == []
