"""HTTPS for the sandbox: a self-signed certificate made at start, and a runner that serves with it.

WooCommerce authenticates with HTTP Basic only over HTTPS, so the sandbox must be reachable over
real TLS for the connector's Basic path to be exercised. The certificate is made with
``cryptography`` (already a dependency) for ``127.0.0.1`` and ``localhost``, valid for a day, and
written with its key to a temporary directory; the connector trusts it through its ``ca_file``
setting (verification stays on).
"""

from __future__ import annotations

import contextlib
import ipaddress
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from orderbridge.sandboxes.base import ASGIApp, RunningSandbox, free_port


@dataclass(frozen=True)
class Certificate:
    cert_file: Path
    key_file: Path


def self_signed(directory: Path | None = None) -> Certificate:
    """A certificate for 127.0.0.1 / localhost and its key, as PEM files in ``directory``."""
    folder = directory or Path(tempfile.mkdtemp(prefix="woo-sandbox-tls-"))
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "OrderBridge WooCommerce sandbox")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return Certificate(cert_file, key_file)


def uvicorn_config(app: ASGIApp, port: int, certificate: Certificate | None, host: str = "127.0.0.1") -> Any:
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,  # a client's idle keep-alive connection must not hold a stop
        ssl_certfile=str(certificate.cert_file) if certificate else None,
        ssl_keyfile=str(certificate.key_file) if certificate else None,
    )


@contextlib.contextmanager
def run_in_thread(app: ASGIApp, certificate: Certificate | None, port: int | None = None) -> Iterator[RunningSandbox]:
    """Serve ``app`` on 127.0.0.1 (HTTPS when ``certificate`` is given) for the ``with`` block."""
    import uvicorn

    port = port or free_port()
    server = uvicorn.Server(uvicorn_config(app, port, certificate))
    thread = threading.Thread(target=server.run, name=f"woo-sandbox:{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"sandbox on port {port} did not start")
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)

    scheme = "https" if certificate else "http"
    try:
        yield RunningSandbox(f"{scheme}://127.0.0.1:{port}", port, stop)
    finally:
        stop()
