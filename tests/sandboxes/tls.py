"""Serve a sandbox as ``https://<shop>.myshopify.com`` to an unchanged client, on this machine only.

Real Shopify extractors build their URLs themselves (``https://{shop}.myshopify.com/admin/api/…``).
To let one read the sandbox without touching its code, the sandbox is served over TLS with a
certificate a throwaway test CA signed for ``*.myshopify.com``, and the client is started with the
standard proxy and trust settings every HTTP stack honours (``HTTPS_PROXY``, ``SSL_CERT_FILE``,
``REQUESTS_CA_BUNDLE``): a small CONNECT proxy on 127.0.0.1 tunnels every ``CONNECT`` to the
sandbox's TLS port, so nothing leaves the loopback interface whatever host the client names.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from orderbridge.sandboxes.base import ASGIApp, free_port


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key) for ``*.myshopify.com``, valid for a day."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("OrderBridge test CA"))
        .issuer_name(_name("OrderBridge test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("orderbridge-sandbox.myshopify.com"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("*.myshopify.com"), x509.DNSName("myshopify.com")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_path, cert_path, key_path


@dataclass
class Tunnel:
    proxy_url: str
    ca_file: Path
    #: CONNECT targets the client asked for (host:port), in order
    connects: list[str]

    def environment(self) -> dict[str, str]:
        """What a client process needs to reach ``https://*.myshopify.com`` (the sandbox) and trust it."""
        return {
            "HTTPS_PROXY": self.proxy_url,
            "https_proxy": self.proxy_url,
            "NO_PROXY": "",
            "no_proxy": "",
            "SSL_CERT_FILE": str(self.ca_file),
            "REQUESTS_CA_BUNDLE": str(self.ca_file),
        }


@contextlib.contextmanager
def serve_as_myshopify(app: ASGIApp, directory: Path) -> Iterator[Tunnel]:
    import uvicorn

    ca, cert, key = make_certificates(directory)
    tls_port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=tls_port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
    )
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, name="sandbox-tls", daemon=True).start()
    connects: list[str] = []
    loop = asyncio.new_event_loop()
    proxy_port = free_port()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
        if method != "CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            writer.close()
            return
        connects.append(target)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", tls_port)  # always the sandbox
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    started = threading.Event()

    def run_proxy() -> None:
        asyncio.set_event_loop(loop)
        proxy = loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", proxy_port))
        started.set()
        loop.run_forever()
        proxy.close()

    threading.Thread(target=run_proxy, name="sandbox-proxy", daemon=True).start()
    deadline = time.monotonic() + 10
    while not (server.started and started.is_set()):
        if time.monotonic() > deadline:
            raise RuntimeError("the TLS sandbox or its proxy did not start")
        time.sleep(0.01)
    try:
        yield Tunnel(f"http://127.0.0.1:{proxy_port}", ca, connects)
    finally:
        server.should_exit = True
        loop.call_soon_threadsafe(loop.stop)
