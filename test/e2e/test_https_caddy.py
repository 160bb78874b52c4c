"""HTTPS through Caddy with our Caddyfile, for real (see docs/deployment.md).

letsencrypt: pebble (Let's Encrypt's ACME test server) runs on loopback with a listener
certificate made here; Caddy, given pebble's directory as ACME_CA and that certificate as its
trusted root (SSL_CERT_FILE: Go reads it), obtains a certificate for `localhost` by solving a
real challenge -- pebble connects back to Caddy's ports (tls-alpn-01 / http-01), which is why
pebble's challenge ports are set to Caddy's. The real Anki client then trusts pebble's issuing
root (fetched from pebble's management endpoint) and logs in, uploads, downloads and syncs
normally through Caddy. Also: TLS 1.2, the client IP passed on in X-Forwarded-For (a forged
one discarded), and the HTTP->HTTPS redirect.

self-signed, existing, off: a quick login through each.

Skipped with E2E_SERVER=official (the proxy is ours, not the protocol), or when caddy, pebble
or openssl is missing (scripts/setup/install.sh installs them).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest
import requests

from anki_client import zstd_compress
from conftest import REPO_ROOT, USERS, SyncServer, _die_with_parent, free_port
from logs import log_with

E2E_DIR = Path(__file__).resolve().parent
CADDYFILE = REPO_ROOT / "Caddyfile"
READY_TIMEOUT = 60.0
CLIENT_TIMEOUT = 150.0

pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("caddy", "pebble", "openssl")),
    reason="needs caddy, pebble and openssl (Debian packages; scripts/setup/install.sh)",
)


@pytest.fixture(autouse=True)
def _ours_only(server_kind: str) -> None:
    if server_kind == "official":
        pytest.skip("the HTTPS proxy setup is ours; nothing to prove against Anki's server")


# ---------------------------------------------------------------------------
# Processes


class Proc:
    """A helper process (pebble, caddy) with its log; duck-types SyncServer for the conftest
    report hook (kind, log_path, log_tail) and for server_factory's teardown (stop)."""

    def __init__(self, kind: str, cmd: list[str], env: dict[str, str], log_path: Path):
        self.kind = kind
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.proc: subprocess.Popen | None = subprocess.Popen(
                cmd,
                cwd=log_path.parent,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, *, hard: bool = False) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL if hard else signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


@pytest.fixture
def procs(request: pytest.FixtureRequest):
    """start(kind, cmd, env, log_path) -> Proc; every one is stopped at teardown."""
    started: list[Proc] = []

    def start(kind: str, cmd: list[str], env: dict[str, str], log_path: Path) -> Proc:
        p = Proc(kind, cmd, env, log_path)
        started.append(p)
        # shown in the report of a failing test (conftest's hook), stopped by server_factory too
        if not hasattr(request.node, "_e2e_servers"):
            request.node._e2e_servers = []
        request.node._e2e_servers.append(p)
        return p

    yield start
    for p in reversed(started):
        p.stop()


def wait_until(what: str, check: Callable[[], bool], proc: Proc, timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.kind} exited while waiting for {what}\n{proc.log_tail()}")
        try:
            if check():
                return
        except (requests.RequestException, OSError) as e:
            last = e
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what} (last: {last})\n{proc.log_tail()}")


def openssl(*args: str) -> None:
    proc = subprocess.run(["openssl", *args], capture_output=True, text=True)
    assert proc.returncode == 0, f"openssl {' '.join(args[:2])} failed:\n{proc.stderr}"


def self_signed_cert(folder: Path, name: str = "localhost") -> tuple[Path, Path]:
    """A certificate for `name` and 127.0.0.1, its own root."""
    cert, key = folder / f"{name}-cert.pem", folder / f"{name}-key.pem"
    openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
        "-addext", f"subjectAltName=DNS:{name},IP:127.0.0.1",
    )  # fmt: skip
    return cert, key


def ca_and_leaf(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a `localhost` certificate it signed (chain file = leaf + CA): `existing` mode."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = folder / "ca-key.pem", folder / "ca.pem"
    openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(ca_key), "-out", str(ca_cert), "-days", "2", "-subj", "/CN=ankisyncd test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
    )  # fmt: skip
    key, csr, leaf = folder / "key.pem", folder / "leaf.csr", folder / "leaf.pem"
    openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(key), "-out", str(csr), "-subj", "/CN=localhost",
    )  # fmt: skip
    ext = folder / "leaf.ext"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(leaf), "-days", "2", "-extfile", str(ext),
    )  # fmt: skip
    chain = folder / "fullchain.pem"
    chain.write_text(leaf.read_text() + ca_cert.read_text())
    return ca_cert, chain, key


class Pebble:
    def __init__(self, procs, folder: Path, challenge_http_port: int, challenge_tls_port: int):
        folder.mkdir(parents=True, exist_ok=True)
        self.listener_cert, listener_key = self_signed_cert(folder)
        self.port, self.mgmt_port = free_port(), free_port()
        config = folder / "pebble-config.json"
        config.write_text(
            json.dumps(
                {
                    "pebble": {
                        "listenAddress": f"127.0.0.1:{self.port}",
                        "managementListenAddress": f"127.0.0.1:{self.mgmt_port}",
                        "certificate": str(self.listener_cert),
                        "privateKey": str(listener_key),
                        # where pebble's validator connects to solve challenges: Caddy's ports
                        "httpPort": challenge_http_port,
                        "tlsPort": challenge_tls_port,
                        "ocspResponderURL": "",
                        "externalAccountBindingRequired": False,
                    }
                }
            )
        )
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PEBBLE_VA_NOSLEEP": "1",  # validate at once
            "PEBBLE_WFE_NONCEREJECT": "0",  # no deliberately rejected nonces
        }
        self.proc = procs("pebble", ["pebble", "-config", str(config)], env, folder / "pebble.log")
        wait_until(
            "pebble's ACME directory",
            lambda: requests.get(self.directory, verify=str(self.listener_cert), timeout=2).ok,
            self.proc,
        )

    @property
    def directory(self) -> str:
        return f"https://localhost:{self.port}/dir"

    def issuing_root(self, dest: Path) -> Path:
        """The root pebble signs with (new at every start), from its management endpoint."""
        r = requests.get(f"https://localhost:{self.mgmt_port}/roots/0", verify=str(self.listener_cert), timeout=5)
        r.raise_for_status()
        dest.write_text(r.text)
        return dest


class Caddy:
    def __init__(self, procs, folder: Path, upstream: SyncServer, mode: str, **env: str):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.http_port = int(env.pop("http_port", free_port()))
        self.https_port = int(env.pop("https_port", free_port()))
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(folder),
            "XDG_DATA_HOME": str(folder / "data"),  # certificates, ACME account, local CA
            "XDG_CONFIG_HOME": str(folder / "config"),
            "SSL_MODE": mode,
            "DOMAIN_NAME": "localhost",
            "CADDY_UPSTREAM": f"{upstream.host}:{upstream.port}",
            "CADDY_HTTP_PORT": str(self.http_port),
            "CADDY_HTTPS_PORT": str(self.https_port),
            "CADDY_ADMIN": "off",
            "CADDY_BIND": "loopback",
            **env,
        }
        cmd = ["caddy", "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"]
        self.proc = procs(f"caddy ({mode})", cmd, self.env, folder / "caddy.log")

    @property
    def https_url(self) -> str:
        return f"https://localhost:{self.https_port}/"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/"

    def wait_ready(self, url: str, verify: Path | bool = True) -> None:
        verify_arg = str(verify) if isinstance(verify, Path) else verify
        wait_until(
            f"{url}health through caddy",
            lambda: requests.get(url + "health", verify=verify_arg, timeout=3).status_code == 200,
            self.proc,
        )

    def local_ca_root(self) -> Path:
        return self.folder / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"


def run_client(command: str, endpoint: str, workdir: Path, ca: Path | None) -> dict:
    """tls_client.py in a fresh process (the client caches its trusted roots per process)."""
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    if ca is not None:
        env["SSL_CERT_FILE"] = str(ca)
    proc = subprocess.run(
        [sys.executable, str(E2E_DIR / "tls_client.py"), command, endpoint, "user1", USERS["user1"], str(workdir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )
    assert proc.returncode == 0, f"anki client ({command} {endpoint}) failed:\n{proc.stderr[-4000:]}\n{proc.stdout}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def tls_handshake(port: int, ca: Path, *, max_version: ssl.TLSVersion) -> tuple[str, dict, int]:
    """(negotiated version, peer certificate, GET /health status) with a capped TLS version."""
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.maximum_version = max_version
    conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=10)
    try:
        conn.request("GET", "/health")
        status = conn.getresponse().status
        return conn.sock.version(), conn.sock.getpeercert(), status
    finally:
        conn.close()


def issuer_cn(cert: dict) -> str:
    return next(v for rdn in cert["issuer"] for k, v in rdn if k == "commonName")


# ---------------------------------------------------------------------------


def letsencrypt_caddy(procs, tmp_path: Path, server, email: str):
    """Caddy in letsencrypt mode against a pebble ACME server, serving once its certificate is
    issued; returns Caddy, pebble's issuing root and the HTTPS port."""
    http_port, https_port = free_port(), free_port()
    pebble = Pebble(procs, tmp_path / "pebble", http_port, https_port)
    caddy = Caddy(
        procs,
        tmp_path / "caddy",
        server,
        "letsencrypt",
        http_port=str(http_port),
        https_port=str(https_port),
        EMAIL=email,
        ACME_CA=pebble.directory,
        SSL_CERT_FILE=str(pebble.listener_cert),  # Caddy trusts pebble's ACME endpoint
    )
    root = pebble.issuing_root(tmp_path / "pebble-root.pem")
    caddy.wait_ready(caddy.https_url, root)
    return caddy, root, https_port


def test_letsencrypt_mode_with_pebble(server_factory, procs, tmp_path: Path):
    server = server_factory(env={"SYNC_IP_HEADER": "X-Forwarded-For"})
    caddy, root, https_port = letsencrypt_caddy(procs, tmp_path, server, email="admin@example.com")

    # The certificate is pebble's, and TLS 1.2 still works (AnkiMobile).
    version, cert, status = tls_handshake(https_port, root, max_version=ssl.TLSVersion.TLSv1_2)
    assert (version, status) == ("TLSv1.2", 200)
    assert issuer_cn(cert).startswith("Pebble Intermediate CA"), cert["issuer"]
    assert ("DNS", "localhost") in cert["subjectAltName"]
    version, _, _ = tls_handshake(https_port, root, max_version=ssl.TLSVersion.TLSv1_3)
    assert version == "TLSv1.3"

    # Plain HTTP is redirected to HTTPS.
    r = requests.get(f"http://localhost:{caddy.http_port}/health", allow_redirects=False, timeout=5)
    assert r.status_code in (301, 302, 307, 308) and r.headers["location"].startswith("https://"), r

    # The real client: full upload, full download, normal sync, all through Caddy.
    out = run_client("roundtrip", caddy.https_url, tmp_path / "client", root)
    assert out == {"upload": "upload", "download": "download", "cards": out["cards"], "normal": "ok"}
    assert out["cards"] > 0

    # The client's address reaches the app; one it forges does not. Connect from 127.0.0.2 so
    # it differs from Caddy's own address (127.0.0.1), which the app sees as the peer.
    ctx = ssl.create_default_context(cafile=str(root))
    conn = http.client.HTTPSConnection("localhost", https_port, context=ctx, source_address=("127.0.0.2", 0), timeout=10)
    try:
        body = zstd_compress(json.dumps({"u": "user1", "p": "not-the-password"}).encode())
        header = json.dumps({"v": 11, "k": "", "c": "ip-probe,1.0,linux", "s": "probe"})
        conn.request(
            "POST",
            "/sync/hostKey",
            body=body,
            headers={"anki-sync": header, "X-Forwarded-For": "6.6.6.6", "Content-Type": "application/octet-stream"},
        )
        assert conn.getresponse().status == 403
    finally:
        conn.close()
    probe_lines = [line for line in log_with(server.log_path, "ip-probe").splitlines() if "ip-probe" in line]
    assert probe_lines, server.log_tail()
    assert "ip=127.0.0.2" in probe_lines[-1] and "6.6.6.6" not in probe_lines[-1], probe_lines[-1]


def test_letsencrypt_mode_without_email(server_factory, procs, tmp_path: Path):
    """EMAIL left empty in .env: the ACME account has no contact address, Caddy still starts
    (it used to stop on a parse error and restart forever) and gets a certificate."""
    server = server_factory()
    caddy, root, https_port = letsencrypt_caddy(procs, tmp_path, server, email="")
    _, cert, status = tls_handshake(https_port, root, max_version=ssl.TLSVersion.TLSv1_3)
    assert status == 200
    assert issuer_cn(cert).startswith("Pebble Intermediate CA"), cert["issuer"]


def test_self_signed_mode(server_factory, procs, tmp_path: Path):
    server = server_factory()
    caddy = Caddy(procs, tmp_path / "caddy", server, "self-signed")
    root = caddy.local_ca_root()
    wait_until("Caddy's local CA", root.exists, caddy.proc)
    caddy.wait_ready(caddy.https_url, root)
    version, cert, _ = tls_handshake(caddy.https_port, root, max_version=ssl.TLSVersion.TLSv1_2)
    assert version == "TLSv1.2"
    assert "Caddy Local Authority" in issuer_cn(cert), cert["issuer"]
    assert run_client("login", caddy.https_url, tmp_path / "client", root)["hkey"]

    # A device that does not trust the root: what Anki shows (docs/deployment.md says so).
    out = run_client("refused", caddy.https_url, tmp_path / "untrusting", None)
    assert out["error"] == "NetworkError", out
    assert out["message"].startswith("A network error occurred."), out
    assert "certificate" not in out["message"].lower(), out  # it does not say why


def test_existing_certificate_mode(server_factory, procs, tmp_path: Path):
    server = server_factory()
    ca, chain, key = ca_and_leaf(tmp_path / "certs")
    caddy = Caddy(procs, tmp_path / "caddy", server, "existing", TLS_CERT_FILE=str(chain), TLS_KEY_FILE=str(key))
    caddy.wait_ready(caddy.https_url, ca)
    _, cert, _ = tls_handshake(caddy.https_port, ca, max_version=ssl.TLSVersion.TLSv1_2)
    assert issuer_cn(cert) == "ankisyncd test CA"
    assert run_client("login", caddy.https_url, tmp_path / "client", ca)["hkey"]


def test_off_mode_plain_http(server_factory, procs, tmp_path: Path):
    server = server_factory()
    caddy = Caddy(procs, tmp_path / "caddy", server, "off")
    caddy.wait_ready(caddy.http_url)
    assert run_client("login", caddy.http_url, tmp_path / "client", None)["hkey"]
    with pytest.raises(requests.ConnectionError):
        requests.get(f"https://localhost:{caddy.https_port}/health", timeout=3)
