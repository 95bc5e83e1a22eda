"""HTTP(S) GETs over pooled keep-alive connections, with retries, redirects and proxies.

The standard library's ``http.client`` speaks HTTP/1.1 (persistent connections, chunked and
sized bodies, CONNECT tunnels, TLS with host name checks); what a downloader adds on top is here:

- idle connections are kept per route (scheme, host, port, proxy) and shared by the threads;
- a request that fails on a reused connection before any answer came is sent again at once on
  a new one: a server may close an idle connection at any moment (RFC 9112 9.3.1), and a GET
  is idempotent, so retrying it automatically is allowed (RFC 9110 9.2.2);
- connection errors and the answers 429, 500, 502, 503 and 504 are retried ``retries`` times,
  0.25 s after the first, doubling, or after the ``Retry-After`` the server asks for (RFC 9110
  10.2.3) when that is at most ``_MAX_RETRY_AFTER``; the last answer is then returned as it is;
- redirects (301, 302, 303, 307, 308: RFC 9110 15.4) are followed up to ``MAX_REDIRECTS``, and
  credentials are not sent on to another host;
- proxies come from the environment (``http_proxy``, ``https_proxy``, ``no_proxy``, read by
  ``urllib.request``, which is imported only when such a variable is set or the platform has
  system proxy settings): plain HTTP goes to the proxy with the whole URL, HTTPS through a
  CONNECT tunnel (credentials in the proxy's URL become ``Proxy-Authorization``).

Why not urllib3, which does all this: importing it (its URL regexes, an HTTP/2 probe through
``importlib.metadata``, logging) cost 50-60 ms of CPU per process on the two-core machines envmat
is measured on, and a cold sync imports it in two processes (fillhelper.py) before its first
byte: without it a cold ``medium`` sync spends ~0.1 s less CPU (0.83 -> 0.74 s user) and ends
0.01-0.08 s sooner (three batches of 12-14 interleaved runs).
"""

from __future__ import annotations

import base64
import http.client
import os
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any, NamedTuple
from urllib.parse import unquote, urljoin, urlsplit

#: answers worth asking again (urllib3's and pip's choice): too many requests, and the
#: server-side errors that are usually passing
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 10
#: a longer Retry-After is not waited for: the answer is reported instead
_MAX_RETRY_AFTER = 60.0
#: idle connections kept per route
_IDLE = 16
#: what a reused connection raises when the server had closed it while it was idle
_STALE = (
    http.client.RemoteDisconnected,
    http.client.BadStatusLine,
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
)


class RequestFailed(Exception):
    """No answer could be had, after the retries. ``certificate``: the server's certificate
    failed the check (a wider set of CAs may help; nothing else will)."""

    def __init__(self, message: str, *, certificate: bool = False) -> None:
        super().__init__(message)
        self.certificate = certificate


class BodyBroken(Exception):
    """The answer's body broke off (closed, reset, timed out or cut short): the whole download
    may be tried again."""


class _Proxy(NamedTuple):
    scheme: str
    host: str
    port: int
    auth: str | None  # the Proxy-Authorization value


class _Route(NamedTuple):
    scheme: str
    host: str
    port: int
    proxy: _Proxy | None


class Response:
    """An answer whose body is read with ``chunks``."""

    def __init__(self, raw: http.client.HTTPResponse) -> None:
        self._raw = raw
        self.status = raw.status
        self.reason = raw.reason
        encoding = (raw.getheader("Content-Encoding") or "identity").strip().lower()
        # identity is asked for (http.client sends Accept-Encoding: identity); a server that
        # compresses anyway is decoded, as urllib3 did: the hashes are over the file's bytes
        self._inflater: Any = None
        if encoding in ("gzip", "x-gzip", "deflate"):
            self._inflater = zlib.decompressobj(47)  # zlib or gzip framing, by its header
        elif encoding not in ("identity", ""):
            raise RequestFailed(f"the server sent the file in an unknown encoding ({encoding})")

    def chunks(self, size: int) -> Iterator[bytes]:
        """The body, in pieces of about ``size`` bytes; ``BodyBroken`` if it breaks off."""
        raw, inflater = self._raw, self._inflater
        try:
            while True:
                data = raw.read(size)
                if not data:
                    break
                if inflater is not None:
                    data = inflater.decompress(data)
                    if not data:
                        continue
                yield data
            if raw.length:  # (read(n) ends quietly at a connection closed too early)
                raise BodyBroken(f"the connection closed {raw.length} bytes before the body's end")
            if inflater is not None:
                rest = inflater.flush()
                if rest:
                    yield rest
                if not inflater.eof:
                    raise BodyBroken("the compressed body ended early")
        except (http.client.HTTPException, OSError, zlib.error) as e:
            raise BodyBroken(_why(e)) from None


class Transport:
    """Connections for the threads of one process; ``get`` one URL at a time each."""

    def __init__(
        self,
        *,
        timeout: float,
        retries: int,
        tls: Callable[[], Any],
        user_agent: str,
    ) -> None:
        self.timeout = timeout
        self.retries = retries
        self._tls = tls  # the shared ssl.SSLContext, made when the first HTTPS route needs it
        self._agent = user_agent
        self._lock = threading.Lock()
        self._idle: dict[_Route, list[http.client.HTTPConnection]] = {}
        self._proxies: dict[tuple[str, str], _Proxy | None] = {}

    @contextmanager
    def get(self, url: str, headers: Mapping[str, str]) -> Iterator[Response]:
        """The answer to a GET of ``url`` (after redirects and retries; any status);
        ``RequestFailed`` when there was none."""
        route, conn, raw = self._request(url, {"User-Agent": self._agent, **headers})
        try:
            yield Response(raw)
        finally:
            self._release(route, conn, raw)

    def _request(
        self, url: str, headers: dict[str, str]
    ) -> tuple[_Route, http.client.HTTPConnection, http.client.HTTPResponse]:
        tries = redirects = 0
        while True:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise RequestFailed(f"cannot download from {parts.scheme or 'a relative'} URL")
            route = self._route(parts.scheme, parts.hostname, parts.port)
            sent = headers
            target = _path(url)
            if route.proxy is not None and parts.scheme == "http":
                target = url  # a forward proxy is given the whole URL (RFC 9112 3.2.2)
                if route.proxy.auth:
                    sent = {**headers, "Proxy-Authorization": route.proxy.auth}
            try:
                conn, raw = self._send(route, target, sent)
            except (OSError, http.client.HTTPException) as e:
                if _certificate_failed(e):  # not retried here: only more CAs can help
                    raise RequestFailed(_why(e), certificate=True) from None
                if tries >= self.retries:
                    raise RequestFailed(_why(e)) from None
                tries += 1
                time.sleep(_backoff(tries))
                continue
            location = raw.getheader("Location")
            if raw.status in REDIRECT_STATUS and location:
                self._release(route, conn, raw, drain=True)
                redirects += 1
                if redirects > MAX_REDIRECTS:
                    raise RequestFailed(f"too many redirects (more than {MAX_REDIRECTS})")
                new = urljoin(url, location.strip())
                moved = urlsplit(new)
                if (moved.scheme, moved.hostname, moved.port) != (
                    parts.scheme,
                    parts.hostname,
                    parts.port,
                ):
                    headers.pop("Authorization", None)  # not for another host's eyes
                url = new
                continue
            if raw.status in RETRY_STATUS and tries < self.retries:
                wait = _retry_after(raw.getheader("Retry-After"))
                if wait is None or wait <= _MAX_RETRY_AFTER:
                    self._release(route, conn, raw, drain=True)
                    tries += 1
                    time.sleep(_backoff(tries) if wait is None else wait)
                    continue
            return route, conn, raw

    def _send(
        self, route: _Route, target: str, headers: dict[str, str]
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        conn = self._take(route)
        reused = conn is not None
        if conn is None:
            conn = self._connect(route)
        try:
            try:
                conn.request("GET", target, headers=headers)
                return conn, conn.getresponse()
            except _STALE:
                if not reused:
                    raise
            conn.close()  # closed by the server while idle: once more, on a new connection
            conn = self._connect(route)
            conn.request("GET", target, headers=headers)
            return conn, conn.getresponse()
        except BaseException:
            conn.close()
            raise

    def _take(self, route: _Route) -> http.client.HTTPConnection | None:
        with self._lock:
            idle = self._idle.get(route)
            return idle.pop() if idle else None

    def _release(
        self,
        route: _Route,
        conn: http.client.HTTPConnection,
        raw: http.client.HTTPResponse,
        *,
        drain: bool = False,
    ) -> None:
        """Keep ``conn`` for the next request when its answer was read to the end (a small
        body of a redirect or an error is read now, with ``drain``); close it otherwise."""
        if drain and not raw.isclosed():
            with suppress(OSError, http.client.HTTPException):
                raw.read(1 << 16)
        if raw.isclosed() and not raw.will_close:
            with self._lock:
                idle = self._idle.setdefault(route, [])
                if len(idle) < _IDLE:
                    idle.append(conn)
                    return
        raw.close()
        conn.close()

    def _connect(self, route: _Route) -> http.client.HTTPConnection:
        proxy = route.proxy
        if proxy is None:
            if route.scheme == "https":
                return http.client.HTTPSConnection(
                    route.host, route.port, timeout=self.timeout, context=self._tls()
                )
            return http.client.HTTPConnection(route.host, route.port, timeout=self.timeout)
        auth = {"Proxy-Authorization": proxy.auth} if proxy.auth else {}
        if route.scheme == "https":
            if proxy.scheme == "https":
                raise RequestFailed(
                    "HTTPS downloads through an https:// proxy are not supported: give the "
                    "proxy's http:// address (the download itself stays TLS end to end)"
                )
            # a CONNECT tunnel through the proxy, then TLS with the host itself
            # (http.client checks the certificate against the tunnel's host)
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                proxy.host, proxy.port, timeout=self.timeout, context=self._tls()
            )
            conn.set_tunnel(route.host, route.port, headers=auth)
            return conn
        if proxy.scheme == "https":
            conn = http.client.HTTPSConnection(
                proxy.host, proxy.port, timeout=self.timeout, context=self._tls()
            )
        else:
            conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=self.timeout)
        return conn

    def _route(self, scheme: str, host: str, port: int | None) -> _Route:
        key = (scheme, host)
        with self._lock:
            known = key in self._proxies
            proxy = self._proxies.get(key)
        if not known:
            proxy = _proxy_for(scheme, host)  # (outside the lock: it may import)
            with self._lock:
                self._proxies[key] = proxy
        return _Route(scheme, host, port or (443 if scheme == "https" else 80), proxy)


def _proxy_for(scheme: str, host: str) -> _Proxy | None:
    """The proxy for ``scheme`` URLs on ``host``, from the environment (and, on macOS and
    Windows, the system's settings), as ``urllib.request`` reads them."""
    if sys.platform not in ("darwin", "win32") and not any(
        k.lower().endswith("_proxy") for k in os.environ
    ):
        return None  # the usual case: urllib.request (~20 ms of imports) is not needed
    from urllib.request import getproxies, proxy_bypass

    if proxy_bypass(host):
        return None
    url = getproxies().get(scheme)
    if not url:
        return None
    if "://" not in url:
        url = f"http://{url}"  # "host:port", as curl and pip read it
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RequestFailed(f"unsupported proxy {parts.scheme}://{parts.hostname or ''}")
    auth = None
    if parts.username is not None:
        user, password = unquote(parts.username), unquote(parts.password or "")
        auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    default = 443 if parts.scheme == "https" else 80
    return _Proxy(parts.scheme, parts.hostname, parts.port or default, auth)


def _path(url: str) -> str:
    """The request target of ``url`` for its own host: path and query, never the fragment."""
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _backoff(tries: int) -> float:
    return 0.25 * 2.0 ** (tries - 1)


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delay seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when: float = parsedate_to_datetime(value).timestamp()
        return max(0.0, when - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _certificate_failed(e: BaseException) -> bool:
    import ssl

    return isinstance(e, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(e)


def _why(e: BaseException) -> str:
    """What went wrong, in one line (an exception's message, or its kind when it has none)."""
    if isinstance(e, http.client.IncompleteRead):
        return f"the connection closed after {len(e.partial)} bytes of the body"
    if isinstance(e, http.client.RemoteDisconnected):
        return "the server closed the connection without an answer"
    if isinstance(e, TimeoutError):
        return f"timed out ({e})" if str(e) and str(e) != "timed out" else "timed out"
    text = str(e).strip()
    return text or type(e).__name__
