"""What can be wrong with an import file, typed: file errors (raised), row errors and warnings (data).

A **file error** means no row can be trusted, so nothing of the file is imported; it is raised as
an :class:`ImportFileError` (an :class:`~orderbridge.errors.InvalidInput`: a person fixes the
file) with a stable ``code``, the ``message`` and the ``hint``::

    ImportFileError
    ├── EmptyFile          import_file_empty          no bytes, or no header
    ├── NotCsv             import_file_not_csv        binary content (a workbook, a PDF, NUL bytes)
    ├── WrongEncoding      import_wrong_encoding      bytes the chosen or detected encoding cannot read
    ├── MissingColumns     import_columns_missing     required columns absent (named)
    ├── DuplicateColumn    import_column_duplicate    the same column twice in the header
    ├── FileTooLarge       import_file_too_large      over the documented limit (named)
    └── MalformedCsv       import_csv_malformed       a line or cell over its limit, an open quote

A **row error** (:class:`RowError`) rejects its row's order — the whole order, never half of it —
and nothing else: the other orders of the file go on. It names the row (as a spreadsheet numbers
it: the header is row 1), the column, the value as written, what is wrong and the fix.

A **warning** (:class:`FileWarning`) changes nothing imported: an unknown column (ignored), a
formula-looking cell (kept as text), blank rows (skipped).
"""

from __future__ import annotations

from dataclasses import dataclass

from orderbridge.errors import InvalidInput


class ImportFileError(InvalidInput):
    code = "import_file_invalid"

    def __init__(self, message: str, *, hint: str, row: int | None = None) -> None:
        super().__init__(message, hint=hint)
        #: the row (spreadsheet numbering) the reader was at, when it is known
        self.row = row


class EmptyFile(ImportFileError):
    code = "import_file_empty"


class NotCsv(ImportFileError):
    code = "import_file_not_csv"


class WrongEncoding(ImportFileError):
    code = "import_wrong_encoding"

    def __init__(self, message: str, *, hint: str, row: int | None, offset: int, suggested: str) -> None:
        super().__init__(message, hint=hint, row=row)
        #: the byte offset of the first byte that cannot be read, from the file's start
        self.offset = offset
        #: the encoding to choose instead
        self.suggested = suggested


class MissingColumns(ImportFileError):
    code = "import_columns_missing"

    def __init__(self, message: str, *, hint: str, missing: tuple[str, ...]) -> None:
        super().__init__(message, hint=hint, row=1)
        self.missing = missing


class DuplicateColumn(ImportFileError):
    code = "import_column_duplicate"


class FileTooLarge(ImportFileError):
    code = "import_file_too_large"

    def __init__(self, message: str, *, hint: str, limit: int) -> None:
        super().__init__(message, hint=hint)
        self.limit = limit


class MalformedCsv(ImportFileError):
    code = "import_csv_malformed"


@dataclass(frozen=True, slots=True)
class RowError:
    """One thing wrong with one cell (or one row): it rejects the row's whole order."""

    row: int
    column: str  # "" when the row as a whole is wrong (too many fields)
    value: str
    code: str
    problem: str
    fix: str

    def as_dict(self) -> dict[str, object]:
        return {
            "row": self.row,
            "column": self.column,
            "value": self.value,
            "code": self.code,
            "problem": self.problem,
            "fix": self.fix,
        }


@dataclass(frozen=True, slots=True)
class FileWarning:
    """Something noticed that changes nothing imported."""

    code: str
    message: str
    row: int | None = None
    column: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, "row": self.row, "column": self.column}
