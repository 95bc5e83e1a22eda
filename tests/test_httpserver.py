"""Each fault of tests.httpserver behaves as documented, seen through urllib and http.client."""

from __future__ import annotations

import base64
import http.client
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.httpserver import FaultServer

PAYLOAD = bytes(range(256)) * 40  # 10 KiB, every byte value


@pytest.fixture
def served(http_server: FaultServer) -> FaultServer:
    (http_server.root / "file.whl").write_bytes(PAYLOAD)
    (http_server.root / "sub").mkdir()
    (http_server.root / "sub" / "name with space.whl").write_bytes(b"spaced")
    return http_server


def get(url: str, **headers: str) -> bytes:
    req = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return bytes(resp.read())


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_serves_files_and_records_requests(served: FaultServer) -> None:
    assert served.requests == []
    assert get(served.url_for("file.whl"), **{"X-Test": "1"}) == PAYLOAD
    assert get(served.url_for("sub/name with space.whl")) == b"spaced"
    assert status_of(served.url_for("missing.whl")) == 404
    method, path, headers = served.requests[0]
    assert (method, path, headers["X-Test"]) == ("GET", "/file.whl", "1")
    assert len(served.requests_for("sub/name with space.whl")) == 1


def test_keep_alive_reuses_one_connection(served: FaultServer) -> None:
    host, port = served.server_address[:2]
    conn = http.client.HTTPConnection(str(host), int(port), timeout=10)
    try:
        conn.request("GET", "/file.whl")
        first = conn.getresponse()
        assert first.version == 11 and first.read() == PAYLOAD
        sock = conn.sock
        conn.request("HEAD", "/file.whl")
        second = conn.getresponse()
        assert second.read() == b""
        assert second.headers["Content-Length"] == str(len(PAYLOAD))
        assert conn.sock is sock
    finally:
        conn.close()


def test_never_serves_outside_root(served: FaultServer) -> None:
    (served.root.parent / "secret.txt").write_text("secret")
    host, port = served.server_address[:2]
    conn = http.client.HTTPConnection(str(host), int(port), timeout=10)
    try:
        conn.request("GET", "/../secret.txt")
        resp = conn.getresponse()
        assert resp.status == 404
        resp.read()
    finally:
        conn.close()


def test_500_then_200(served: FaultServer) -> None:
    served.set_fault("file.whl", "500-then-200", count=2)
    url = served.url_for("file.whl")
    assert [status_of(url), status_of(url), status_of(url)] == [500, 500, 200]


def test_always_500_and_404(served: FaultServer) -> None:
    served.set_fault("file.whl", "always-500")
    assert {status_of(served.url_for("file.whl")) for _ in range(3)} == {500}
    served.set_fault("file.whl", "404")
    assert status_of(served.url_for("file.whl")) == 404
    served.clear_fault("file.whl")
    assert status_of(served.url_for("file.whl")) == 200


@pytest.mark.parametrize("always", [False, True])
def test_drop_mid_body(served: FaultServer, always: bool) -> None:
    served.set_fault("file.whl", "drop-mid-body", always=always)
    url = served.url_for("file.whl")
    with pytest.raises(http.client.IncompleteRead) as info:
        get(url)
    assert len(info.value.partial) == len(PAYLOAD) // 2
    if always:
        with pytest.raises(http.client.IncompleteRead):
            get(url)
    else:
        assert get(url) == PAYLOAD


def test_wrong_size_and_wrong_bytes(served: FaultServer) -> None:
    url = served.url_for("file.whl")
    served.set_fault("file.whl", "wrong-size")
    body = get(url)
    assert len(body) > len(PAYLOAD) and body.startswith(PAYLOAD)
    served.set_fault("file.whl", "wrong-bytes")
    body = get(url)
    assert len(body) == len(PAYLOAD) and body != PAYLOAD


def test_redirect_once(served: FaultServer) -> None:
    served.set_fault("file.whl", "redirect")
    with urllib.request.urlopen(served.url_for("file.whl"), timeout=10) as resp:
        assert resp.read() == PAYLOAD
        assert resp.url.endswith("/_real/file.whl")
    assert [r.path for r in served.requests] == ["/file.whl", "/_real/file.whl"]


def test_redirect_loop(served: FaultServer) -> None:
    served.set_fault("file.whl", "redirect-loop")
    with pytest.raises(urllib.error.HTTPError) as info:
        get(served.url_for("file.whl"))
    assert info.value.code == 302
    assert len(served.requests) > 1


def test_slow(served: FaultServer) -> None:
    served.set_fault("file.whl", "slow", seconds=0.4)
    start = time.monotonic()
    assert get(served.url_for("file.whl")) == PAYLOAD
    assert time.monotonic() - start >= 0.4
    with pytest.raises((socket.timeout, urllib.error.URLError, TimeoutError)):
        urllib.request.urlopen(served.url_for("file.whl"), timeout=0.1)


def test_auth(served: FaultServer) -> None:
    served.set_fault("file.whl", "auth", user="alice", password="pw")
    url = served.url_for("file.whl")
    with pytest.raises(urllib.error.HTTPError) as info:
        get(url)
    assert info.value.code == 401
    assert "Basic" in info.value.headers["WWW-Authenticate"]
    wrong = base64.b64encode(b"alice:nope").decode()
    assert status_of_with_auth(url, wrong) == 401
    good = base64.b64encode(b"alice:pw").decode()
    assert get(url, Authorization=f"Basic {good}") == PAYLOAD


def status_of_with_auth(url: str, token: str) -> int:
    try:
        get(url, Authorization=f"Basic {token}")
    except urllib.error.HTTPError as exc:
        return exc.code
    return 200


def test_unknown_fault_is_rejected(served: FaultServer) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        served.set_fault("file.whl", "teapot")


def test_context_manager_stops(tmp_path: Path) -> None:
    with FaultServer(tmp_path) as server:
        port = server.server_address[1]
        (tmp_path / "a").write_bytes(b"a")
        assert get(server.url_for("a")) == b"a"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
