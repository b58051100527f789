"""The one type of an object id in a portal or API path: a positive integer the databases can
hold (PostgreSQL's ``bigint``, SQLite's ``INTEGER``). A larger one is answered 422 "not a valid
id" by validation, before any query — the driver would refuse to send it and the request would
fail with a 500 (``tests/web/portal/test_route_table.py`` tries 2**63 on every route)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

#: the largest id either database stores
MAX_ID = 2**63 - 1

ObjectId = Annotated[int, Path(ge=1, le=MAX_ID)]
