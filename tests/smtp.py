"""A real SMTP server on 127.0.0.1 for tests (aiosmtpd), keeping every message it accepts.

The hub talks to it with the same ``smtplib`` code it uses in production, so a test sees exactly
what a mail server would receive: the envelope and the parsed message.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
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

    def __init__(self, port: int | None = None, *, login: tuple[str, str] | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.inbox = Inbox()
        extra: dict[str, Any] = {}
        if login is not None:
            extra = {"authenticator": _Login(*login), "auth_require_tls": False}
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
def smtp_server(port: int | None = None, *, login: tuple[str, str] | None = None) -> Iterator[SmtpSink]:
    """Serve SMTP on 127.0.0.1 for the ``with`` block (see :class:`SmtpSink`)."""
    with SmtpSink(port, login=login) as sink:
        yield sink
