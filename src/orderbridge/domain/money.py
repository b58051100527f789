"""Money: a ``Decimal`` amount with an ISO 4217 currency code. Never a float."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation


class MoneyError(ValueError):
    """An amount or currency that cannot be money (names the offending value)."""


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise MoneyError(f"amount must be a Decimal, got {type(self.amount).__name__} {self.amount!r}")
        if not self.amount.is_finite():
            raise MoneyError(f"amount must be finite, got {self.amount!r}")
        c = self.currency
        if not (len(c) == 3 and c.isascii() and c.isalpha() and c.isupper()):
            raise MoneyError(f"currency must be an ISO 4217 code like 'USD', got {self.currency!r}")

    @classmethod
    def parse(cls, amount: str | int | Decimal | None, currency: str) -> Money:
        """Parse a remote amount (APIs send strings like ``"19.99"``); ``None`` means zero."""
        if amount is None or amount == "":
            return cls(Decimal("0"), currency)
        if isinstance(amount, float):
            raise MoneyError(f"refusing float amount {amount!r}: send a string or Decimal")
        try:
            return cls(Decimal(str(amount)), currency)
        except InvalidOperation as exc:
            raise MoneyError(f"{amount!r} is not a decimal amount") from exc

    @classmethod
    def trusted(cls, amount: Decimal, currency: str) -> Money:
        """Rebuild money the ledger already validated (canonical decoding hot path): no checks."""
        money = object.__new__(cls)
        object.__setattr__(money, "amount", amount)
        object.__setattr__(money, "currency", currency)
        return money

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal("0"), currency)

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def times(self, quantity: int) -> Money:
        return Money(self.amount * quantity, self.currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise MoneyError(f"cannot combine {self.currency} with {other.currency}")

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"
