"""Settings from the environment (prefix ``ORDERBRIDGE_``), via pydantic-settings.

The secret key that encrypts connection credentials must be real outside the demo: a missing key,
the published demo key, or a key that is not a Fernet key refuses to start with a fix hint.
``orderbridge init`` writes a fresh key file (mode 0600) beside the database.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from orderbridge.errors import SettingsError

#: The key the demo uses; refused everywhere else because it is published in this repository.
DEMO_SECRET_KEY = "b3JkZXJicmlkZ2UtZGVtby1rZXktbm90LWEtc2VjcmU="


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERBRIDGE_", env_file=None, extra="ignore")

    data_dir: Path = Field(default=Path(".orderbridge"), description="where the SQLite file and key file live")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in data_dir")
    secret_key: str | None = Field(default=None, description="Fernet key encrypting credentials at rest")
    demo: bool = False
    poll_interval_s: float = Field(default=60.0, gt=0)
    shipment_poll_interval_s: float = Field(default=60.0, gt=0)
    cursor_overlap_s: float = Field(default=120.0, ge=0)
    lease_ttl_s: float = Field(default=120.0, gt=1)
    http_timeout_s: float = Field(default=30.0, gt=0)
    log_level: str = "INFO"
    log_json: bool = False

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'orderbridge.db').as_posix()}"

    @property
    def key_file(self) -> Path:
        return self.data_dir / "secret.key"

    def resolved_secret_key(self) -> str:
        """The encryption key, or :class:`SettingsError` saying exactly how to provide one."""
        key = self.secret_key
        if key is None and self.key_file.exists():
            key = self.key_file.read_text().strip()
        if key is None:
            if self.demo:
                return DEMO_SECRET_KEY
            raise SettingsError(
                "no secret key: connection credentials cannot be encrypted",
                hint="Run `orderbridge init` (writes .orderbridge/secret.key) or set ORDERBRIDGE_SECRET_KEY "
                "to the output of `orderbridge keygen`.",
            )
        if key == DEMO_SECRET_KEY and not self.demo:
            raise SettingsError(
                "the secret key is the published demo key",
                hint="Generate a real one with `orderbridge keygen` and set ORDERBRIDGE_SECRET_KEY.",
            )
        return key
