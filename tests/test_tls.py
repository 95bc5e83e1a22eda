"""The TLS set-up: the system's CA directory read lazily instead of its bundle, and the bundle
loaded after all when a certificate check fails (fetch.py)."""

from __future__ import annotations

import hashlib
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from envmat import fetch
from envmat.errors import EnvmatError
from tests.httpserver import make_cert, serve_tls


def _make_cert(tmp_path: Path, name: str) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make certificates for the test server")
    return make_cert(tmp_path, name)


def _hash_dir(tmp_path: Path, *certs: Path) -> Path:
    """A directory laid out as c_rehash does: <subject hash>.0 -> the certificate."""
    d = tmp_path / "certs"
    d.mkdir()
    for cert in certs:
        h = subprocess.run(["openssl", "x509", "-hash", "-noout", "-in", str(cert)], check=True, capture_output=True, text=True).stdout.strip()
        (d / f"{h}.0").symlink_to(cert)
    return d


@pytest.fixture
def https(tmp_path: Path) -> Iterator[tuple[str, bytes, Path]]:
    """(URL of a file, its bytes, the server's certificate) served over TLS on 127.0.0.1."""
    cert, key = _make_cert(tmp_path, "server")
    served = tmp_path / "served"
    served.mkdir()
    body = b"payload " * 1000
    (served / "f.bin").write_bytes(body)
    with serve_tls(served, cert, key) as base:
        yield f"{base}/f.bin", body, cert


@pytest.fixture
def system_ca(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Path]]:
    """Set [bundle, directory] to stand for the system's CA bundle and hashed directory; the
    TLS set-up starts afresh, with no CA variable set."""
    where: list[Path] = []
    real = ssl.get_default_verify_paths

    def paths() -> ssl.DefaultVerifyPaths:
        bundle, directory = where
        return real()._replace(cafile=str(bundle), capath=str(directory), openssl_cafile=str(bundle), openssl_capath=str(directory))

    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(ssl, "get_default_verify_paths", paths)
    monkeypatch.setattr(fetch, "_tls", {})
    yield where
    fetch.wait_tls()


def _download(url: str, body: bytes, dest: Path) -> None:
    fetch.Fetcher(timeout=5, retries=0).download(url, dest, size=len(body), hashes={"sha256": hashlib.sha256(body).hexdigest()})


def test_the_system_directory_is_read_lazily_when_it_covers_the_bundle(https: tuple[str, bytes, Path], system_ca: list[Path], tmp_path: Path) -> None:
    url, body, cert = https
    other, _ = _make_cert(tmp_path, "other")
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(cert.read_bytes() + other.read_bytes())
    system_ca[:] = [bundle, _hash_dir(tmp_path, cert, other)]
    fetch.start_tls_setup()
    context = fetch.tls_context()
    assert context.cert_store_stats()["x509_ca"] == 0  # nothing parsed before a handshake
    _download(url, body, tmp_path / "got")
    assert (tmp_path / "got").read_bytes() == body
    assert context.cert_store_stats()["x509_ca"] == 1  # the one CA that handshake needed
    assert fetch._tls["skipped_cafile"] == str(bundle)  # never needed


def test_the_bundle_is_loaded_when_the_directory_alone_fails_a_check(https: tuple[str, bytes, Path], system_ca: list[Path], tmp_path: Path) -> None:
    url, body, cert = https
    other, _ = _make_cert(tmp_path, "other")
    # as many links as the bundle has certificates, but not the server's: the directory is
    # tried first, fails, and the bundle that vouches for the server is loaded after all
    system_ca[:] = [cert, _hash_dir(tmp_path, other)]
    fetch.start_tls_setup()
    assert fetch.tls_context().cert_store_stats()["x509_ca"] == 0
    _download(url, body, tmp_path / "got")
    assert (tmp_path / "got").read_bytes() == body
    assert "skipped_cafile" not in fetch._tls


def test_an_unknown_certificate_is_still_refused_after_the_bundle_is_loaded(https: tuple[str, bytes, Path], system_ca: list[Path], tmp_path: Path) -> None:
    url, body, _ = https
    other, _ = _make_cert(tmp_path, "other")
    system_ca[:] = [other, _hash_dir(tmp_path, other)]
    fetch.start_tls_setup()
    with pytest.raises(EnvmatError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        _download(url, body, tmp_path / "got")


def test_the_bundle_is_parsed_whole_when_the_directory_does_not_cover_it(system_ca: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one, _ = _make_cert(tmp_path, "one")
    two, _ = _make_cert(tmp_path, "two")
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(one.read_bytes() + two.read_bytes())
    directory = _hash_dir(tmp_path, one)  # a certificate appended to the bundle by hand
    assert fetch._lazy_ca_dir(str(bundle), str(bundle), str(directory)) is None
    assert fetch._lazy_ca_dir(str(one), str(one), str(directory)) == str(directory)
    # a bundle of the user's own (not the system's) is exactly what is trusted
    assert fetch._lazy_ca_dir(str(one), str(bundle), str(directory)) is None
    # a directory named by SSL_CERT_DIR is one OpenSSL's defaults would ask as well
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    assert fetch._lazy_ca_dir(str(one), str(one), str(directory)) is None
    monkeypatch.setenv("SSL_CERT_DIR", str(directory))
    assert fetch._lazy_ca_dir(str(one), str(one), str(directory)) == str(directory)
    assert fetch._lazy_ca_dir(str(one), str(one), str(tmp_path / "missing")) is None
