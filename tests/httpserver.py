"""A loopback HTTP/1.1 file server with per-path fault injection, for fetch tests (stdlib only)."""

from __future__ import annotations

import base64
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote, unquote, urlsplit

FAULTS = (
    "500-then-200",
    "always-500",
    "404",
    "drop-mid-body",
    "wrong-size",
    "wrong-bytes",
    "redirect-loop",
    "redirect",
    "slow",
    "auth",
)
# Files behind this prefix are served without faults; "redirect" points here.
REAL_PREFIX = "/_real/"


class Request(NamedTuple):
    """One request the server received (headers with their original capitalisation)."""

    method: str
    path: str
    headers: dict[str, str]


class Fault:
    """A fault set on one file, with the state that counts how often it already fired."""

    def __init__(
        self,
        kind: str,
        *,
        count: int = 1,
        always: bool = False,
        seconds: float = 1.0,
        user: str = "user",
        password: str = "secret",
        extra: bytes = b"EXTRA-BYTES",
    ) -> None:
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {', '.join(FAULTS)}")
        self.kind = kind
        self.count = count
        self.always = always
        self.seconds = seconds
        self.user = user
        self.password = password
        self.extra = extra
        self.fired = 0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every response carries Content-Length
    server: FaultServer  # type: ignore[assignment]

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean; FaultServer.requests is the log

    def do_HEAD(self) -> None:
        self._handle(send_body=False)

    def do_GET(self) -> None:
        self._handle(send_body=True)

    # -- responses ------------------------------------------------------------------------

    def _send(
        self,
        status: int,
        body: bytes = b"",
        *,
        send_body: bool,
        headers: dict[str, str] | None = None,
        length: int | None = None,
    ) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _handle(self, *, send_body: bool) -> None:
        srv = self.server
        srv._record(Request(self.command, self.path, dict(self.headers.items())))
        path = unquote(urlsplit(self.path).path)
        real = path.startswith(REAL_PREFIX)
        filename = path[len(REAL_PREFIX) :] if real else path.lstrip("/")
        target = srv.file_for(filename)
        fault = None if real else srv.fault_for(filename)
        if fault is not None and self._apply_fault(fault, filename, target, send_body=send_body):
            return
        if target is None:
            self._send(404, b"not found\n", send_body=send_body)
            return
        body = target.read_bytes()
        self._send(
            200, body, send_body=send_body, headers={"Content-Type": "application/octet-stream"}
        )

    def _apply_fault(
        self, fault: Fault, filename: str, target: Path | None, *, send_body: bool
    ) -> bool:
        """Answer with the fault and return True, or return False to serve the file normally."""
        kind = fault.kind
        with self.server._lock:
            fault.fired += 1
            nth = fault.fired
        if kind == "500-then-200":
            if nth <= fault.count:
                self._send(500, b"injected error\n", send_body=send_body)
                return True
            return False
        if kind == "always-500":
            self._send(500, b"injected error\n", send_body=send_body)
            return True
        if kind == "404":
            self._send(404, b"not found\n", send_body=send_body)
            return True
        if kind == "slow":
            time.sleep(fault.seconds)
            return False
        if kind == "auth":
            expected = base64.b64encode(f"{fault.user}:{fault.password}".encode()).decode()
            if self.headers.get("Authorization", "") != f"Basic {expected}":
                self._send(
                    401,
                    b"authentication required\n",
                    send_body=send_body,
                    headers={"WWW-Authenticate": 'Basic realm="envmat-tests"'},
                )
                return True
            return False
        if kind == "redirect":
            location = REAL_PREFIX + quote(filename)
            self._send(302, b"", send_body=send_body, headers={"Location": location})
            return True
        if kind == "redirect-loop":
            location = "/" + quote(filename)
            self._send(302, b"", send_body=send_body, headers={"Location": location})
            return True
        if target is None:
            return False  # the remaining faults alter a real file's bytes
        body = target.read_bytes()
        if kind == "wrong-size":
            self._send(200, body + fault.extra, send_body=send_body)
            return True
        if kind == "wrong-bytes":
            if body:
                mid = len(body) // 2
                body = body[:mid] + bytes([body[mid] ^ 0xFF]) + body[mid + 1 :]
            self._send(200, body, send_body=send_body)
            return True
        if kind == "drop-mid-body":
            if not fault.always and nth > fault.count:
                return False
            # True Content-Length, half the body, then the connection goes away.
            self._send(200, body[: len(body) // 2], send_body=send_body, length=len(body))
            self.wfile.flush()
            self.close_connection = True
            return True
        raise AssertionError(kind)


class FaultServer(ThreadingHTTPServer):
    """Serve ``root`` on 127.0.0.1 from a background thread; faults are set per file name."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = Path(root)
        self.requests: list[Request] = []
        self._faults: dict[str, Fault] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gives up (timeouts, dropped connections) is expected in fault tests.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FaultServer:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="envmat-test-http"
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self.server_close()

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- API for tests -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    def url_for(self, filename: str) -> str:
        """Return the URL of ``filename`` (a path relative to the served root)."""
        return self.base_url + quote(filename)

    def set_fault(self, filename: str, fault: str, **options: Any) -> Fault:
        """Inject ``fault`` for ``filename``; options: count, always, seconds, user, password, extra."""
        f = Fault(fault, **options)
        with self._lock:
            self._faults[filename] = f
        return f

    def clear_fault(self, filename: str) -> None:
        with self._lock:
            self._faults.pop(filename, None)

    def requests_for(self, filename: str) -> list[Request]:
        """Return the requests whose path names ``filename`` (directly or through the redirect)."""
        wanted = {"/" + quote(filename), REAL_PREFIX + quote(filename)}
        with self._lock:
            return [r for r in self.requests if urlsplit(r.path).path in wanted]

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    # -- used by the handler -------------------------------------------------------------------

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def fault_for(self, filename: str) -> Fault | None:
        with self._lock:
            return self._faults.get(filename)

    def file_for(self, filename: str) -> Path | None:
        root = self.root.resolve()
        candidate = (root / filename).resolve()
        if root != candidate and root not in candidate.parents:
            return None  # never serve outside the root
        return candidate if candidate.is_file() else None


@contextmanager
def serve_directory(root: Path) -> Iterator[FaultServer]:
    """Run a FaultServer for ``root`` for the duration of the ``with`` block."""
    Path(root).mkdir(parents=True, exist_ok=True)
    with FaultServer(root) as server:
        yield server


def make_cert(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 with subject ``CN=name``, and its key (openssl
    makes them; the caller skips when ``shutil.which("openssl")`` is None)."""
    import subprocess

    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


@contextmanager
def serve_tls(root: Path, cert: Path, key: Path) -> Iterator[str]:
    """Serve the files under ``root`` over HTTPS on 127.0.0.1 with ``cert``; yields the base URL."""
    import functools
    import ssl
    from http.server import SimpleHTTPRequestHandler

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
