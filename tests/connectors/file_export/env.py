"""The file-export destination's test environment: a real drop directory, the connector built
through the registry, and the files themselves as the "remote's own record"."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from orderbridge.connectors import registry
from orderbridge.connectors.base import OutgoingOrder
from orderbridge.connectors.file_export.connector import FileExportDestination
from tests.connectors.contract_destination import make_order, outgoing

#: the columns the tests' files carry: enough to find every order and line again
COLUMNS = [
    "order_key",
    "document_id",
    "order_number",
    "order_id",
    "created_at",
    "currency",
    "line_id",
    "sku",
    "title",
    "quantity",
    "unit_price",
    "line_total",
    "total",
    "customer_name",
    "note",
]


def build(directory: Path, **settings: Any) -> FileExportDestination:
    merged = {"directory": str(directory), "template": {"columns": COLUMNS}, **settings}
    connector: Any = registry.build("file_export", "", {}, merged)
    assert isinstance(connector, FileExportDestination)
    return connector


def delivered(directory: Path) -> list[Path]:
    """The final files in the drop directory (never a temporary one, never the manifest)."""
    return sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))


def read_csv(path: Path, *, encoding: str = "utf-8", separator: str = ",") -> list[dict[str, str]]:
    text = path.read_bytes().decode(encoding)
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=separator))


@dataclass
class FileExportEnv:
    directory: Path
    connector: FileExportDestination
    encoding: str = "cp1252"

    def documents(self) -> list[tuple[str, str, Mapping[str, str]]]:
        """(file, position, first row) of every order in every delivered CSV file."""
        out: dict[tuple[str, str], tuple[str, str, Mapping[str, str]]] = {}
        for path in delivered(self.directory):
            if path.suffix != ".csv":
                continue
            for row in read_csv(path, encoding=self.encoding):
                out.setdefault((path.name, row["document_id"]), (path.name, row["document_id"], row))
        return list(out.values())

    def received(self, order_key: str) -> list[Mapping[str, Any]]:
        return [{"file": f, "position": p, **row} for f, p, row in self.documents() if row["order_key"] == order_key]

    def ship_all(self) -> None:
        raise AssertionError("a drop directory ships nothing: its shipment contract is skipped")

    def revoke(self) -> None:
        raise AssertionError("a drop directory has no credentials to revoke")

    def restore(self) -> None:
        raise AssertionError("a drop directory has no credentials to restore")

    def fault(self, kind: str, **kw: Any) -> None:
        raise AssertionError("a drop directory has no HTTP faults")

    def refused_order(self, n: int) -> OutgoingOrder:
        """An order with a character the files' encoding (cp1252) cannot hold."""
        order = make_order(n)
        line = msgspec.structs.replace(order.lines[0], title="Snowman \u2603")
        return outgoing(msgspec.structs.replace(order, lines=(line, *order.lines[1:])))
