"""A real SMTP server on 127.0.0.1 for tests (aiosmtpd), keeping every message it accepts.

The hub talks to it with the same ``smtplib`` code it uses in production, so a test sees exactly
what a mail server would receive: the envelope and the parsed message. With ``tls`` it speaks
implicit TLS (``"ssl"``) or requires STARTTLS (``"starttls"``) with a certificate from
:func:`make_certificates`: a private CA and a server certificate for 127.0.0.1 signed by it.
"""

from __future__ import annotations

import ipaddress
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from orderbridge.sandboxes.base import free_port


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    authenticated: bool

    @property
    def text(self) -> str:
        body = self.message.get_body(("plain",))
        assert body is not None
        content: str = body.get_content()
        return content


@dataclass
class Inbox:
    """The aiosmtpd handler: stores what arrives."""

    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), message, bool(session.authenticated))
            )
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if address in r.rcpt_tos]

    def __len__(self) -> int:
        with self.lock:
            return len(self.received)


class _Login:
    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user.encode(), password.encode()

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            self.user,
            self.password,
        )
        return AuthResult(success=ok, handled=False)


class SmtpSink:
    """A local SMTP server that keeps what it receives: ``with SmtpSink() as sink: ... sink.messages``.

    With ``login``, AUTH is offered (over plain text) and checked, and :attr:`Received.authenticated`
    says whether the sender logged in."""

    def __init__(
        self,
        port: int | None = None,
        *,
        login: tuple[str, str] | None = None,
        tls: str | None = None,
        certificates: Certificates | None = None,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.inbox = Inbox()
        extra: dict[str, Any] = {}
        if login is not None:
            # AUTH only over TLS when STARTTLS is the way to it (aiosmtpd does not count implicit TLS)
            extra = {"authenticator": _Login(*login), "auth_require_tls": tls == "starttls"}
        if tls is not None:
            assert certificates is not None, "a TLS server needs certificates (make_certificates)"
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(certificates.server_cert, certificates.server_key)
            if tls == "ssl":
                extra["ssl_context"] = context
            else:
                extra.update(tls_context=context, require_starttls=True)
        self._controller = Controller(self.inbox, hostname=self.host, port=self.port, **extra)

    @property
    def messages(self) -> list[EmailMessage]:
        with self.inbox.lock:
            return [r.message for r in self.inbox.received]

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._controller.stop()


@contextmanager
def smtp_server(
    port: int | None = None,
    *,
    login: tuple[str, str] | None = None,
    tls: str | None = None,
    certificates: Certificates | None = None,
) -> Iterator[SmtpSink]:
    """Serve SMTP on 127.0.0.1 for the ``with`` block (see :class:`SmtpSink`)."""
    with SmtpSink(port, login=login, tls=tls, certificates=certificates) as sink:
        yield sink


@dataclass(frozen=True)
class Certificates:
    ca_cert: Path
    server_cert: Path
    server_key: Path


def make_certificates(directory: Path) -> Certificates:
    """A private CA and a server certificate for 127.0.0.1 / localhost it signs, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("OrderBridge test CA"))
        .issuer_name(name("OrderBridge test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = Certificates(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.server_cert.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    files.server_key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return files
