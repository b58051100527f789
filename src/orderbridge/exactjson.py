"""JSON whose numbers keep their exact decimal value: ``Decimal`` in, raw JSON number out.

Money is ``Decimal`` everywhere in OrderBridge; converting it to ``float`` to satisfy ``json.dumps``
would send ``19.989999999999998`` style values to a destination. The standard encoder cannot write
a raw number for a non-float type, so :func:`dumps` lets the C encoder write a per-call marker
string for each ``Decimal`` and then strips the marker's quotes and delimiters around
``str(decimal)``. The delimiters carry a random 64-bit nonce, so no string in the payload can be
mistaken for them. :func:`loads` parses JSON numbers with a fraction as ``Decimal`` so nothing is
lost on the way back in either.

Shared by connectors (request bodies) and sandboxes (response bodies); stdlib only.
"""

from __future__ import annotations

import json
import secrets
from decimal import Decimal
from typing import Any


def dumps(obj: Any) -> bytes:
    """Serialise ``obj`` (dict/list/str/int/bool/None/Decimal) to compact UTF-8 JSON bytes."""
    nonce = secrets.token_hex(8)
    found = False

    def default(value: Any) -> str:
        nonlocal found
        if isinstance(value, Decimal):
            if not value.is_finite():
                raise ValueError(f"cannot write non-finite number {value!r} as JSON")
            found = True
            return f"\x00{nonce}{value}{nonce}\x00"
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")

    text = json.dumps(obj, default=default, separators=(",", ":"), ensure_ascii=False)
    if found:
        # the encoder escapes the NUL delimiters, so a marker reads "\u0000<nonce>19.99<nonce>\u0000";
        # only a marker can contain the random nonce next to an escaped NUL
        text = text.replace(f'"\\u0000{nonce}', "").replace(f'{nonce}\\u0000"', "")
    return text.encode()


def loads(data: bytes | str) -> Any:
    """Parse JSON, reading numbers with a fraction or exponent as ``Decimal``."""
    return json.loads(data, parse_float=Decimal)
