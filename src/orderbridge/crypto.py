"""Credentials at rest: Fernet (AES-128-CBC + HMAC-SHA256) from ``cryptography``.

Credentials are a small JSON object per connection, encrypted as one token. A token that does not
decrypt (wrong key, tampered row) raises :class:`SettingsError` naming the connection, never
returns garbage.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken

from orderbridge.errors import SettingsError
from orderbridge.fixes import Fix, FixAction, update_credentials


def generate_key() -> str:
    return Fernet.generate_key().decode()


class SecretBox:
    def __init__(self, key: str) -> None:
        try:
            self._fernet = Fernet(key.encode())
        except (ValueError, TypeError) as exc:
            raise SettingsError(
                "the secret key is not a valid Fernet key (32 url-safe base64-encoded bytes)",
                hint="Generate a new key and set ORDERBRIDGE_SECRET_KEY to it.",
                fix=Fix.of(FixAction.GENERATE_KEY, "Generate a new secret key."),
            ) from exc

    def seal(self, credentials: Mapping[str, str]) -> str:
        return self._fernet.encrypt(json.dumps(dict(credentials), sort_keys=True).encode()).decode()

    def open(self, token: str, *, what: str = "credentials") -> dict[str, str]:
        try:
            data = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise SettingsError(
                f"{what} cannot be decrypted with the current secret key",
                hint="Use the key they were saved with, or re-enter the connection's credentials.",
                fix=update_credentials("Re-enter the connection's credentials."),
            ) from exc
        if not isinstance(data, dict):
            raise SettingsError(f"{what} are not a JSON object after decryption")
        return {str(k): str(v) for k, v in data.items()}
