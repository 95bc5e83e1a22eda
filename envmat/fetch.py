"""Downloads over HTTP(S) (transport.py) with streaming size and hash checks, credentials
from the URL or netrc, and the one TLS context every connection shares.

This module is imported only when a file is missing from the cache: a warm or no-op sync never
pays for ``ssl`` and ``http.client``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .errors import EnvmatError
from .logs import Logger

log = Logger(__name__)

_ATTEMPTS = 4  # whole-download attempts for a body that breaks off; transport.py retries requests
_HASH_LINK = re.compile(r"[0-9a-f]{8}\.[0-9]+")


def redact(url: str) -> str:
    """``url`` with its credentials, if any, replaced by ``****`` (for messages and logs)."""
    scheme, sep, rest = url.partition("://")
    netloc, slash, tail = rest.partition("/")
    if not sep or "@" not in netloc:
        return url
    # by hand, not urlsplit: an invalid URL (a bad port, a broken IPv6 address) is reported
    # with this, and must not raise here
    return f"{scheme}{sep}****@{netloc.rpartition('@')[2]}{slash}{tail}"


_tls: dict[str, Any] = {}
_tls_lock = threading.Lock()


def start_tls_setup() -> None:
    """Start building the TLS context in a thread, to overlap other work before downloads.

    Loading a CA bundle takes OpenSSL 3 about 0.1 s (and importing ssl and http.client more): a
    sync that will download starts it first thing, so it is ready when the first download is.
    """
    with _tls_lock:
        if "thread" not in _tls:
            # not a daemon: the interpreter waits for it at exit (say, after a lock error)
            # instead of killing it halfway through an import
            _tls["thread"] = threading.Thread(target=_build_tls, daemon=False)
            _tls["thread"].start()


def _build_tls() -> None:
    try:
        import ssl

        # made first: OpenSSL loads the CA bundle without the GIL, so the load overlaps the
        # imports other threads hold it for (settings as urllib3's create_urllib3_context)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies certificates and hosts
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_TICKET
        context.post_handshake_auth = True
        keylog = os.environ.get("SSLKEYLOGFILE")  # (as urllib3: for debugging with Wireshark)
        if keylog:
            context.keylog_filename = os.path.expandvars(keylog)
        ca = (
            os.environ.get("REQUESTS_CA_BUNDLE")
            or os.environ.get("CURL_CA_BUNDLE")
            or os.environ.get("SSL_CERT_FILE")
        )
        paths = ssl.get_default_verify_paths()
        lazy = _lazy_ca_dir(ca or paths.openssl_cafile, paths.openssl_cafile, paths.openssl_capath)
        if lazy:
            # Parsing a whole CA bundle costs OpenSSL 3 ~30 ms of CPU in every process, while a
            # hashed directory is read lazily, one CA per handshake. When the bundle asked for
            # is the system's and the system's directory holds as many certificates
            # (update-ca-certificates writes both from one set), the directory alone is
            # asked: the same trust. The bundle is still loaded if a check fails (widen_ca).
            context.load_verify_locations(capath=lazy)
            _tls["skipped_cafile"] = ca or paths.openssl_cafile
        elif ca:
            context.load_verify_locations(cafile=ca)
        else:
            context.load_default_certs()
        from . import transport  # noqa: F401  (here, so that the download threads find it imported)

        _tls["context"] = context
    except Exception as e:  # raised to the downloader that needs the context (tls_context)
        _tls["error"] = e


def _lazy_ca_dir(bundle: str, system_bundle: str, capath: str) -> str | None:
    """The hashed CA directory to use instead of the CA bundle file ``bundle``, or None: only
    when ``bundle`` is the system's bundle and ``capath`` (the system's directory) holds at
    least as many certificates."""
    try:
        if os.path.realpath(bundle) != os.path.realpath(system_bundle):
            return None  # a bundle of the user's own: exactly what it trusts, nothing more
        own_dir = os.environ.get("SSL_CERT_DIR")
        if own_dir and os.path.realpath(own_dir) != os.path.realpath(capath):
            return None  # OpenSSL's defaults would ask that directory too: load them
        with os.scandir(capath) as it:
            # c_rehash names: <8 hex digits of the subject hash>.<n> (CRLs are .r<n>)
            links = sum(1 for e in it if _HASH_LINK.fullmatch(e.name))
        with open(bundle, "rb") as f:
            certs = f.read().count(b"-----BEGIN CERTIFICATE-----")
    except OSError:
        return None
    return capath if links >= certs > 0 else None


def widen_ca() -> bool:
    """Load the CA bundle file the lazy set-up skipped (``_build_tls``) into the shared context,
    once: True when it did so now (a failed certificate check is then worth trying again)."""
    with _tls_lock:
        cafile = _tls.pop("skipped_cafile", None)
        context = _tls.get("context")
        if cafile is None or context is None:
            return False
        try:
            context.load_verify_locations(cafile=cafile)
        except (OSError, ValueError):
            return False
        log.info("certificate check failed with the CA directory alone: loaded %s too", cafile)
        return True


def wait_tls() -> None:
    """Wait for the TLS set-up if it was started (its error, if any, waits for ``tls_context``)."""
    with _tls_lock:
        thread = _tls.get("thread")
    if thread is not None:
        thread.join()


def tls_context() -> Any:
    """One TLS context for every connection, so that the CA bundle is loaded once."""
    start_tls_setup()
    _tls["thread"].join()
    if "error" in _tls:
        e = _tls["error"]
        raise EnvmatError(
            f"cannot set up TLS: {e}",
            hint="check SSL_CERT_FILE / REQUESTS_CA_BUNDLE: they must name a readable PEM bundle",
        )
    return _tls["context"]


class Fetcher:
    """One connection pool per process, shared by the download threads."""

    def __init__(self, *, timeout: float = 30.0, retries: int = 3) -> None:
        from . import __version__
        from .transport import Transport

        self._transport = Transport(
            timeout=timeout, retries=retries, tls=tls_context, user_agent=f"envmat/{__version__}"
        )
        self._netrc: Any = False  # a netrc.netrc once read; None: there is none

    def _auth_headers(self, url: str) -> dict[str, str]:
        parts = urlsplit(url)
        user, password = parts.username, parts.password
        if user is None:
            if self._netrc is False:
                self._netrc = _read_netrc()
            if self._netrc is not None:
                auth = self._netrc.authenticators(parts.hostname or "")
                if auth:
                    user, password = auth[0], auth[2]
        if user is None:
            return {}
        token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def download(
        self,
        url: str,
        dest: Path | None,
        *,
        size: int | None,
        hashes: Mapping[str, str],
        on_bytes: Callable[[int], None] | None = None,
        on_chunk: Callable[[bytes], None] | None = None,
        on_retry: Callable[[], None] | None = None,
    ) -> None:
        """Stream ``url`` into ``dest`` (None: only to ``on_chunk``), checking size and every
        supported hash as bytes arrive.

        ``on_chunk`` sees every chunk as it arrives (before the hashes are known: it must not
        trust them yet); ``on_retry`` is called before a broken-off download starts again.
        """
        from .lock.model import url_problem  # (not at the top: fillhelper imports this first)
        from .transport import BodyBroken, RequestFailed

        problem = url_problem(url)
        if problem:  # (the lock readers say so first, at the key)
            raise EnvmatError(
                f"{redact(url)} is not a valid URL ({problem})", hint="fix the URL in the lock"
            )
        parts = urlsplit(url)
        clean = urlunsplit(
            (
                parts.scheme,
                parts.hostname + (f":{parts.port}" if parts.port else "")
                if parts.hostname
                else parts.netloc,
                parts.path,
                parts.query,
                "",
            )
        )
        headers = self._auth_headers(url)
        delay = 0.25
        for attempt in range(1, _ATTEMPTS + 1):
            if attempt > 1 and on_retry is not None:
                on_retry()
            try:
                self._download_once(clean, url, dest, size, hashes, headers, on_bytes, on_chunk)
                return
            except BodyBroken as e:
                if attempt == _ATTEMPTS:
                    raise EnvmatError(
                        f"download of {redact(url)} failed: {e}",
                        hint="check the network connection and the URL; envmat retried "
                        f"{_ATTEMPTS} times",
                    ) from None
                log.info("retrying %s after %s", redact(url), e)
                time.sleep(delay)
                delay *= 2
            except RequestFailed as e:
                if e.certificate and attempt < _ATTEMPTS and widen_ca():
                    continue  # the certificate may be in the bundle file the set-up skipped
                raise EnvmatError(
                    f"download of {redact(url)} failed: {e}",
                    hint="check the network connection, proxy settings (HTTPS_PROXY) and the URL",
                ) from None

    def _download_once(
        self,
        clean: str,
        url: str,
        dest: Path | None,
        size: int | None,
        hashes: Mapping[str, str],
        headers: dict[str, str],
        on_bytes: Callable[[int], None] | None = None,
        on_chunk: Callable[[bytes], None] | None = None,
    ) -> None:
        with self._transport.get(clean, headers) as resp:
            if resp.status != 200:
                hint = (
                    "the server refused the credentials; put them in ~/.netrc or the URL"
                    if resp.status in (401, 403)
                    else "check that the URL in the lock still exists"
                )
                raise EnvmatError(
                    f"download of {redact(url)} failed: HTTP {resp.status} {resp.reason or ''}".rstrip(),
                    hint=hint,
                )
            digests = {
                algo: hashlib.new(algo) for algo in hashes if algo in hashlib.algorithms_guaranteed
            }
            got = 0
            out = open(dest, "wb") if dest is not None else None  # noqa: SIM115
            try:
                for chunk in resp.chunks(1 << 18):
                    got += len(chunk)
                    if size is not None and got > size:
                        raise EnvmatError(
                            f"download of {redact(url)} is larger than the {size} bytes the lock says",
                            hint="the file on the server is not the one that was locked; lock again or fix the server",
                        )
                    for d in digests.values():
                        d.update(chunk)
                    if out is not None:
                        out.write(chunk)
                    if on_chunk is not None:
                        on_chunk(chunk)
                    if on_bytes is not None:
                        on_bytes(len(chunk))
            finally:
                if out is not None:
                    out.close()
        check_file(redact(url), got, {a: d.hexdigest() for a, d in digests.items()}, size, hashes)


def _read_netrc() -> Any:
    """The user's netrc (``$NETRC`` or ``~/.netrc``), or None when there is none or it is
    unreadable. ``netrc`` (with shlex and sysconfig) is imported only when the file exists."""
    given = os.environ.get("NETRC")
    if not os.path.isfile(given or os.path.join(os.path.expanduser("~"), ".netrc")):
        return None
    import netrc

    try:
        return netrc.netrc(given)  # (None: the default file, with netrc's own permission check)
    except (OSError, netrc.NetrcParseError):
        return None


def check_file(
    what: str,
    got_size: int,
    got_hashes: Mapping[str, str],
    size: int | None,
    hashes: Mapping[str, str],
) -> None:
    """Size first, then every algorithm both sides know (PEP 751: hashes MUST be checked)."""
    if size is not None and got_size != size:
        raise EnvmatError(
            f"size mismatch for {what}",
            details=[f"expected: {size} bytes", f"actual:   {got_size} bytes"],
            hint="the file is not the one that was locked; lock again, or restore the file",
        )
    checked = False
    for algo, expected in hashes.items():
        actual = got_hashes.get(algo)
        if actual is None:
            continue
        checked = True
        if actual != expected.lower():
            raise EnvmatError(
                f"hash mismatch for {what}",
                details=[f"expected: {algo}:{expected}", f"actual:   {algo}:{actual}"],
                hint="the file is not the one that was locked; lock again, or restore the file",
            )
    if not checked:
        raise EnvmatError(
            f"no hash envmat can check for {what} (the lock has {', '.join(hashes) or 'none'})",
            hint="lock again with sha256 hashes",
        )


def hash_local(path: Path, hashes: Mapping[str, str]) -> tuple[int, dict[str, str]]:
    digests = {
        algo: hashlib.new(algo)
        for algo in set(hashes) | {"sha256"}
        if algo in hashlib.algorithms_guaranteed
    }
    got = 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            got += len(chunk)
            for d in digests.values():
                d.update(chunk)
    return got, {a: d.hexdigest() for a, d in digests.items()}
