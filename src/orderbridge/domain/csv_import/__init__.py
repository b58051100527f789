"""Orders imported from a CSV file: the format (:mod:`.spec`), the streaming reader (:mod:`.reader`),
cell values (:mod:`.values`) and what can be wrong (:mod:`.problems`). Pure: bytes in, typed
orders and typed problems out; the import service (``services/order_imports.py``) decides what
happens to each order and writes it.

The public surface is re-exported here.
"""

from __future__ import annotations

from orderbridge.domain.csv_import.problems import (
    DuplicateColumn,
    EmptyFile,
    FileTooLarge,
    FileWarning,
    ImportFileError,
    MalformedCsv,
    MissingColumns,
    NotCsv,
    RowError,
    WrongEncoding,
)
from orderbridge.domain.csv_import.reader import CsvOrders, ImportLine, ImportOrder
from orderbridge.domain.csv_import.spec import (
    COLUMNS,
    MAX_FILE_BYTES,
    REQUIRED,
    Column,
    Delimiter,
    Encoding,
    parse_delimiter,
    parse_encoding,
)
from orderbridge.domain.csv_import.values import looks_like_formula, neutralise

__all__ = [
    "COLUMNS",
    "MAX_FILE_BYTES",
    "REQUIRED",
    "Column",
    "CsvOrders",
    "Delimiter",
    "DuplicateColumn",
    "EmptyFile",
    "Encoding",
    "FileTooLarge",
    "FileWarning",
    "ImportFileError",
    "ImportLine",
    "ImportOrder",
    "MalformedCsv",
    "MissingColumns",
    "NotCsv",
    "RowError",
    "WrongEncoding",
    "looks_like_formula",
    "neutralise",
    "parse_delimiter",
    "parse_encoding",
]
