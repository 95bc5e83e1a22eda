"""The HTTP transport (transport.py) against real servers on 127.0.0.1: kept-alive connections
reused, and replaced when the server closed them; redirects, and credentials that do not follow
them to another host; Retry-After; compressed bodies; proxies, forward and CONNECT tunnels."""

from __future__ import annotations

import base64
import gzip
import select
import shutil
import socket
import ssl
import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from envmat.transport import RequestFailed, Transport
from tests.httpserver import make_cert, serve_tls

BODY = b"wheel bytes " * 5000


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.connections = 0
        self.seen: list[tuple[str, str, dict[str, str]]] = []  # (method, path, headers)
        self.script: list[tuple[int, dict[str, str], bytes]] = []  # answers before the file


@contextmanager
def _serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[_Server]:
    server = _Server(handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


class _Files(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive: answers from ``server.script`` first, then ``BODY``."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.seen.append(("GET", self.path, dict(self.headers.items())))
        status, headers, body = self.server.script.pop(0) if self.server.script else (200, {}, BODY)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _OneShot(_Files):
    """Says nothing of closing, then closes every connection after one answer: what a server
    does to a kept-alive connection it drops while the client holds it idle."""

    def do_GET(self) -> None:
        super().do_GET()
        self.close_connection = True


def _transport(retries: int = 0, tls: Callable[[], Any] = lambda: None) -> Transport:
    return Transport(timeout=10, retries=retries, tls=tls, user_agent="envmat-test")


def _get(t: Transport, url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    with t.get(url, headers or {}) as resp:
        return resp.status, b"".join(resp.chunks(1 << 16))


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.upper(), raising=False)


def test_one_connection_serves_many_downloads() -> None:
    t = _transport()
    with _serve(_Files) as server:
        url = f"http://127.0.0.1:{server.server_address[1]}/f.whl"
        assert [_get(t, url) for _ in range(5)] == [(200, BODY)] * 5
        assert server.connections == 1


def test_a_connection_closed_while_idle_is_replaced_without_a_retry() -> None:
    t = _transport(retries=0)  # not the retry policy: the request is sent again on a new one
    with _serve(_OneShot) as server:
        url = f"http://127.0.0.1:{server.server_address[1]}/f.whl"
        assert [_get(t, url) for _ in range(3)] == [(200, BODY)] * 3
        assert server.connections == 3
        assert len(server.seen) == 3


def test_redirects_are_followed_and_credentials_stay_with_their_host() -> None:
    t = _transport()
    with _serve(_Files) as server:
        port = server.server_address[1]
        server.script = [
            (302, {"Location": "/moved/f.whl"}, b""),  # same host: credentials kept
            (301, {"Location": f"http://localhost:{port}/elsewhere/f.whl"}, b"moved"),
        ]
        auth = {"Authorization": "Basic " + base64.b64encode(b"user:secret").decode()}
        assert _get(t, f"http://127.0.0.1:{port}/f.whl", auth) == (200, BODY)
    paths = [(path, "Authorization" in headers) for _, path, headers in server.seen]
    assert paths == [("/f.whl", True), ("/moved/f.whl", True), ("/elsewhere/f.whl", False)]


def test_a_redirect_loop_ends_in_a_clear_error() -> None:
    t = _transport()
    with _serve(_Files) as server:
        server.script = [(307, {"Location": "/again"}, b"")] * 20
        with pytest.raises(RequestFailed, match="too many redirects"):
            _get(t, f"http://127.0.0.1:{server.server_address[1]}/again")
        assert len(server.seen) == 11  # the first request and ten redirects


def test_busy_answers_are_retried_after_the_wait_the_server_asks_for() -> None:
    t = _transport(retries=3)
    with _serve(_Files) as server:
        url = f"http://127.0.0.1:{server.server_address[1]}/f.whl"
        server.script = [(503, {"Retry-After": "0"}, b"busy"), (429, {}, b"slow down")]
        assert _get(t, url) == (200, BODY)
        assert len(server.seen) == 3
        # a wait longer than envmat will sit through: the answer is reported at once
        server.seen.clear()
        server.script = [(503, {"Retry-After": "3600"}, b"maintenance")]
        assert _get(t, url) == (503, b"maintenance")
        assert len(server.seen) == 1


def test_a_compressed_body_is_decoded_and_an_unknown_encoding_refused() -> None:
    t = _transport()
    with _serve(_Files) as server:
        url = f"http://127.0.0.1:{server.server_address[1]}/f.whl"
        server.script = [(200, {"Content-Encoding": "gzip"}, gzip.compress(BODY))]
        assert _get(t, url) == (200, BODY)
        server.script = [(200, {"Content-Encoding": "br"}, b"\x0b\x02\x80hello\x03")]
        with pytest.raises(RequestFailed, match=r"unknown encoding \(br\)"):
            _get(t, url)


class _Proxy(BaseHTTPRequestHandler):
    """A forward proxy (GET with the whole URL) that also opens CONNECT tunnels."""

    server: _Server

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.seen.append(("GET", self.path, dict(self.headers.items())))
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(self.path) as resp:
            body = resp.read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_CONNECT(self) -> None:
        self.server.seen.append(("CONNECT", self.path, dict(self.headers.items())))
        host, _, port = self.path.rpartition(":")
        upstream = socket.create_connection((host, int(port)), timeout=10)
        self.send_response(200, "Connection established")
        self.end_headers()
        ends = [self.connection, upstream]
        try:
            while True:
                ready, _, _ = select.select(ends, [], [], 10)
                if not ready:
                    return
                for end in ready:
                    data = end.recv(1 << 16)
                    if not data:
                        return
                    (upstream if end is self.connection else self.connection).sendall(data)
        finally:
            upstream.close()
            self.close_connection = True


def test_plain_http_goes_to_a_forward_proxy_with_its_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    with _serve(_Files) as origin, _serve(_Proxy) as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"http://us%40er:p%3Ass@127.0.0.1:{proxy.server_address[1]}")
        url = f"http://127.0.0.1:{origin.server_address[1]}/f.whl"
        assert _get(_transport(), url) == (200, BODY)
    ((method, path, headers),) = proxy.seen
    assert (method, path) == ("GET", url)
    assert headers["Proxy-Authorization"] == "Basic " + base64.b64encode(b"us@er:p:ss").decode()


def test_https_goes_through_a_connect_tunnel_and_checks_the_hosts_certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make certificates for the test server")
    cert, key = make_cert(tmp_path, "origin")
    other, _ = make_cert(tmp_path, "other")
    (tmp_path / "served").mkdir()
    (tmp_path / "served/f.whl").write_bytes(BODY)

    def trusting(ca: Path) -> Callable[[], ssl.SSLContext]:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cafile=ca)
        return lambda: ctx

    with serve_tls(tmp_path / "served", cert, key) as base, _serve(_Proxy) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", f"http://user:pw@127.0.0.1:{proxy.server_address[1]}")
        assert _get(_transport(tls=trusting(cert)), f"{base}/f.whl") == (200, BODY)
        ((method, path, headers),) = proxy.seen
        assert (method, path) == ("CONNECT", base.removeprefix("https://"))
        assert headers["Proxy-Authorization"] == "Basic " + base64.b64encode(b"user:pw").decode()
        # the tunnel is end to end: a certificate the client does not trust is refused
        with pytest.raises(RequestFailed) as refused:
            _get(_transport(tls=trusting(other)), f"{base}/f.whl")
        assert refused.value.certificate


def test_https_through_an_https_proxy_is_refused_with_the_way_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "https://127.0.0.1:9")
    with pytest.raises(RequestFailed, match=r"https:// proxy are not supported: give the proxy's http:// address"):
        _get(_transport(), "https://127.0.0.1:9/f.whl")
