"""More inputs users meet: ambiguous locks, slow and authenticated servers, Ctrl-C, progress lines."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import default_sigint, run_envmat, tree_snapshot
from tests.test_errors import assert_user_error
from tests.test_sync import lock_for, make_demo, run_ok
from tests.wheelmaker import package_entry, wheel_entry, write_pylock

MakeWheel = Callable[..., Path]


def served_lock(tmp_path: Path, server, wheels: list[Path], url_for=None) -> Path:  # type: ignore[no-untyped-def]
    pkgs = []
    for whl in wheels:
        (server.root / whl.name).write_bytes(whl.read_bytes())
        name, version = whl.name.split("-")[:2]
        url = (url_for or server.url_for)(whl.name)
        pkgs.append(package_entry(name.replace("_", "-"), version, [wheel_entry(whl, url=url)]))
    return write_pylock(tmp_path / "lock" / "pylock.toml", pkgs)


def test_two_entries_selected_for_one_name_is_an_error(make_wheel: MakeWheel, tmp_path: Path) -> None:
    one = make_wheel("dup", "1.0", files={"dup.py": ""})
    two = make_wheel("dup", "2.0", files={"dup.py": ""})
    lock = write_pylock(
        tmp_path / "pylock.toml",
        [
            package_entry("dup", "1.0", [wheel_entry(one, base=tmp_path)], marker="python_version >= '3'"),
            package_entry("dup", "2.0", [wheel_entry(two, base=tmp_path)], marker="os_name == 'posix'"),
        ],
    )
    err = assert_user_error(run_envmat("sync", lock, "--venv", tmp_path / "v"), "two entries for one package")
    assert "packages[1]" in err and "packages[0]" in err
    assert not (tmp_path / "v").exists()


def test_slow_server_times_out_cleanly(make_wheel: MakeWheel, tmp_path: Path, cache_dir: Path, http_server) -> None:  # type: ignore[no-untyped-def]
    (whl,) = make_demo(make_wheel)[:1]
    lock = served_lock(tmp_path, http_server, [whl])
    http_server.set_fault(whl.name, "slow", seconds=5, always=True)
    start = time.monotonic()
    proc = run_envmat("sync", lock, "--venv", tmp_path / "v", "--timeout", "0.5")
    assert_user_error(proc, "download of", whl.name)
    assert time.monotonic() - start < 30  # retried a few times, not forever
    assert not (tmp_path / "v").exists()


def test_credentials_from_the_url_and_from_netrc(make_wheel: MakeWheel, tmp_path: Path, cache_dir: Path, http_server) -> None:  # type: ignore[no-untyped-def]
    (whl,) = make_demo(make_wheel)[:1]
    http_server.set_fault(whl.name, "auth", user="alice", password="s3cret", always=True)
    # without credentials: 401, named, with a hint about where credentials go
    lock = served_lock(tmp_path, http_server, [whl])
    assert_user_error(run_envmat("sync", lock, "--venv", tmp_path / "v0"), "401", ".netrc")
    # credentials in the URL (and never printed)
    in_url = served_lock(tmp_path / "u", http_server, [whl], url_for=lambda n: http_server.url_for(n).replace("://", "://alice:s3cret@"))
    proc = run_ok("sync", in_url, "--venv", tmp_path / "v1", "--cache-dir", tmp_path / "c1")
    assert "s3cret" not in proc.stderr
    # credentials from a netrc file
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login alice password s3cret\n")
    netrc.chmod(0o600)
    proc = run_envmat("sync", lock, "--venv", tmp_path / "v2", "--cache-dir", tmp_path / "c2", env={"NETRC": str(netrc)})
    assert proc.returncode == 0, proc.stderr


def test_progress_lines_when_not_a_terminal_and_none_with_quiet(make_wheel: MakeWheel, tmp_path: Path, cache_dir: Path, http_server) -> None:  # type: ignore[no-untyped-def]
    wheels = make_demo(make_wheel)
    lock = served_lock(tmp_path, http_server, wheels)
    proc = run_ok("sync", lock, "--venv", tmp_path / "v1", "--cache-dir", tmp_path / "c1")
    for whl in wheels:
        assert f"Downloading {whl.name}" in proc.stderr
    assert "Installing" in proc.stderr
    proc = run_ok("sync", lock, "--venv", tmp_path / "v2", "--cache-dir", tmp_path / "c2", "-q")
    assert proc.stderr == "" and proc.stdout == ""


def test_ctrl_c_restores_the_venv(make_wheel: MakeWheel, tmp_path: Path) -> None:
    """SIGINT in the middle of applying: the transaction rolls back and says so."""
    base = [make_wheel(f"big{i}", "1.0", files={f"big{i}/m{j}.py": f"X = {j}\n" for j in range(200)}) for i in range(20)]
    newer = [make_wheel(f"big{i}", "2.0", files={f"big{i}/n{j}.py": f"Y = {j}\n" for j in range(200)}) for i in range(20)]
    venv = tmp_path / "venv"
    run_ok("sync", lock_for(tmp_path / "a" / "pylock.toml", base), "--venv", venv)
    before = tree_snapshot(venv)
    lock_b = lock_for(tmp_path / "b" / "pylock.toml", newer)
    env = {k: v for k, v in os.environ.items() if k != "ENVMAT_FAULT_KILL_AFTER"}
    # slow each filesystem change down a little so the signal lands inside the transaction
    env["ENVMAT_FAULT_DELAY"] = "0.002"
    proc = subprocess.Popen([sys.executable, "-m", "envmat", "sync", str(lock_b), "--venv", str(venv)], env=env, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    deadline = time.monotonic() + 60
    while not (venv / ".envmat/journal.json").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the sync ended before its transaction was seen"
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert "interrupted; the venv was restored" in err and "Traceback" not in err
    assert tree_snapshot(venv) == before
    assert not (venv / ".envmat/journal.json").exists()


def test_downloads_go_through_the_proxy_from_the_environment(make_wheel: MakeWheel, tmp_path: Path, cache_dir: Path, http_server) -> None:  # type: ignore[no-untyped-def]
    import threading
    import urllib.request
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str] = []

    class Proxy(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # a forward proxy: the request line carries the whole URL
            seen.append(self.path)
            with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(self.path) as resp:
                body = resp.read()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        wheels = make_demo(make_wheel)
        lock = served_lock(tmp_path, http_server, wheels)
        env = {"HTTP_PROXY": f"http://127.0.0.1:{proxy.server_address[1]}", "http_proxy": None, "NO_PROXY": None, "no_proxy": None}
        proc = run_envmat("sync", lock, "--venv", tmp_path / "v", env=env)
        assert proc.returncode == 0, proc.stderr
        assert sorted(p.rsplit("/", 1)[-1] for p in seen) == sorted(w.name for w in wheels)
    finally:
        proxy.shutdown()


def test_an_unreadable_ca_bundle_is_one_clear_error(make_wheel: MakeWheel, tmp_path: Path, cache_dir: Path) -> None:
    """A CA bundle that cannot be read fails every download for one reason: said once, with
    the variable to check, and no venv left behind."""
    entries = []
    for name in ("tls-a", "tls-b", "tls-c"):
        whl = make_wheel(name, "1.0", files={f"{name.replace('-', '_')}/__init__.py": ""})
        entries.append(package_entry(name, "1.0", [wheel_entry(whl, url=f"https://127.0.0.1:9/{whl.name}")]))
    lock = write_pylock(tmp_path / "lock" / "pylock.toml", entries)
    env = {"SSL_CERT_FILE": str(tmp_path / "missing.pem"), "REQUESTS_CA_BUNDLE": None, "CURL_CA_BUNDLE": None}
    err = assert_user_error(
        run_envmat("sync", lock, "--venv", tmp_path / "v", env=env),
        "error: 3 locked files could not be fetched: cannot set up TLS",
        "SSL_CERT_FILE",
    )
    assert err.count("cannot set up TLS") == 1, err
    assert not (tmp_path / "v").exists()


def test_tls_is_verified_and_a_custom_ca_bundle_is_honoured(make_wheel: MakeWheel, tmp_path: Path, cache_dir: Path) -> None:
    import shutil

    import pytest

    from tests.httpserver import make_cert, serve_tls

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate for the test server")
    cert, key = make_cert(tmp_path, "127.0.0.1")
    served = tmp_path / "tls"
    served.mkdir()
    (whl,) = make_demo(make_wheel)[:1]
    (served / whl.name).write_bytes(whl.read_bytes())
    with serve_tls(served, cert, key) as base:
        url = f"{base}/{whl.name}"
        lock = write_pylock(tmp_path / "lock" / "pylock.toml", [package_entry("hello-tool", "1.0", [wheel_entry(whl, url=url)])])
        clean = {"SSL_CERT_FILE": None, "REQUESTS_CA_BUNDLE": None, "CURL_CA_BUNDLE": None}
        # an unknown certificate is refused, clearly
        err = assert_user_error(run_envmat("sync", lock, "--venv", tmp_path / "v0", "--timeout", "5", env=clean), "download of")
        assert "CERTIFICATE_VERIFY_FAILED" in err or "certificate verify failed" in err
        assert not (tmp_path / "v0").exists()
        # the usual environment variable names the CA bundle that vouches for it
        proc = run_envmat("sync", lock, "--venv", tmp_path / "v1", env={**clean, "SSL_CERT_FILE": str(cert)})
        assert proc.returncode == 0, proc.stderr
        # a trusted certificate for another name is still refused: host names are checked
        other = write_pylock(tmp_path / "lock2" / "pylock.toml", [package_entry("hello-tool", "1.0", [wheel_entry(whl, url=url.replace("127.0.0.1", "localhost"))])])
        err = assert_user_error(run_envmat("sync", other, "--venv", tmp_path / "v2", "--timeout", "5", env={**clean, "SSL_CERT_FILE": str(cert), "ENVMAT_CACHE_DIR": str(tmp_path / "c2")}), "download of")
        assert "hostname" in err.lower() or "doesn't match" in err or "not valid for" in err, err
