"""The streaming reader: a binary file in, typed orders out, in bounded memory.

Why it is shaped so:

- **Binary in, lines decoded one by one.** The reader takes the bytes (an upload, a file on disk)
  and never reads them whole: the first :data:`~spec.HEAD_BYTES` are looked at to detect binary
  content, the encoding and the separator, then the file is read one physical line at a time (each
  at most :data:`~spec.MAX_LINE_BYTES`), decoded strictly, and handed to the standard ``csv`` module,
  which does the Excel-style quoting (a quoted value may hold the separator, doubled quotes and line
  breaks). Splitting the bytes at ``\\n`` is safe in both encodings read (neither uses the byte
  0x0A inside a character), and decoding line by line is what lets an undecodable byte be named
  by its row and offset.
- **Orders are streamed too.** The rows of one order are adjacent, so an order is complete when the
  number changes and is yielded then; what is kept between orders is the order numbers seen (to
  catch an order whose rows are apart) — a few bytes per order, bounded by the file's size limit.
  An order holds at most :data:`~orderbridge.domain.limits.MAX_LINES` rows.
- **Nothing is guessed.** An unknown column is ignored with a warning; every bad cell is a
  :class:`~problems.RowError` that rejects its order; a file that cannot be read at all raises a
  :class:`~problems.ImportFileError`.

An order whose rows are apart is yielded twice — its first part may look valid — and the second
part carries the error; a consumer that must not half-import it (the import service) reads the
whole file before writing anything and rejects every order number that had an error anywhere.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import BinaryIO

from orderbridge.domain import limits
from orderbridge.domain.csv_import import spec, values
from orderbridge.domain.csv_import.problems import (
    DuplicateColumn,
    EmptyFile,
    FileTooLarge,
    FileWarning,
    MalformedCsv,
    MissingColumns,
    NotCsv,
    RowError,
    WrongEncoding,
)
from orderbridge.domain.csv_import.spec import Delimiter, Encoding, Kind, Level

_BOM = codecs.BOM_UTF8
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "an Excel workbook (.xlsx) or another zip archive"),
    (b"\xd0\xcf\x11\xe0", "an old Excel workbook (.xls)"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\xff\xfe", 'UTF-16 text (Excel\'s "Unicode Text")'),
    (b"\xfe\xff", 'UTF-16 text (Excel\'s "Unicode Text")'),
)
_SAVE_AS_CSV = 'Save it from the spreadsheet as "CSV UTF-8 (comma delimited)" and import that file.'
_CONTROL = frozenset(range(0, 9)) | frozenset(range(14, 32))


@dataclass(frozen=True, slots=True)
class ImportLine:
    row: int
    sku: str
    title: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True, slots=True)
class ImportOrder:
    """The rows of one order, read: its lines, its order-level values and every error found."""

    number: str
    rows: tuple[int, ...]
    lines: tuple[ImportLine, ...]
    #: order-level column → typed value (the first non-empty one; the others agreed or are errors)
    fields: Mapping[str, object]
    #: which row each order-level value was read from (to point a later problem at its row)
    field_rows: Mapping[str, int]
    custom: tuple[tuple[str, str], ...]
    errors: tuple[RowError, ...]
    #: the order's number appeared earlier in the file, apart from these rows
    apart: bool = False

    @property
    def first_row(self) -> int:
        return self.rows[0]

    @property
    def rejected(self) -> bool:
        return bool(self.errors)


@dataclass(slots=True)
class _Group:
    number: str
    key: str
    rows: list[int] = field(default_factory=list)
    lines: list[ImportLine] = field(default_factory=list)
    fields: dict[str, object] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    field_rows: dict[str, int] = field(default_factory=dict)
    #: each order-level value's text as written on the row it was read from
    raw: dict[str, str] = field(default_factory=dict)
    errors: list[RowError] = field(default_factory=list)
    apart: bool = False

    def freeze(self, custom_names: Mapping[str, str]) -> ImportOrder:
        custom = tuple((custom_names[k], str(v)) for k, v in self.fields.items() if k in custom_names)
        order_fields = {k: v for k, v in self.fields.items() if k not in custom_names}
        return ImportOrder(
            self.number,
            tuple(self.rows),
            tuple(self.lines),
            order_fields,
            dict(self.field_rows),
            custom,
            tuple(self.errors),
            self.apart,
        )


def _normalise_header(name: str) -> str:
    name = name.strip().lstrip("\ufeff").strip()
    low = name.lower()
    if low.startswith(spec.CUSTOM_PREFIX):
        return spec.CUSTOM_PREFIX + name[len(spec.CUSTOM_PREFIX) :].strip()
    return low.replace(" ", "_").replace("-", "_")


def _sniff_binary(head: bytes) -> None:
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise NotCsv(f"The file is not CSV: it is {what}.", hint=_SAVE_AS_CSV)
    sample = head[:4096]
    if b"\x00" in sample or (sample and sum(b in _CONTROL for b in sample) > len(sample) // 100):
        raise NotCsv("The file is not CSV: it holds binary data (NUL or control bytes).", hint=_SAVE_AS_CSV)


def _detect_encoding(head: bytes) -> Encoding:
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    try:
        decoder.decode(head, final=False)  # a character cut at the head's end is not an error
    except UnicodeDecodeError:
        return Encoding.WINDOWS_1252
    return Encoding.UTF8


def _detect_delimiter(header_line: str) -> Delimiter:
    return Delimiter.SEMICOLON if header_line.count(";") > header_line.count(",") else Delimiter.COMMA


class CsvOrders:
    """An import file, opened: the header is read (file errors about it are raised here), then
    iterating yields one :class:`ImportOrder` per order, in file order. Iterate once."""

    def __init__(
        self,
        file: BinaryIO,
        *,
        encoding: Encoding | None = None,
        delimiter: Delimiter | None = None,
        max_bytes: int = spec.MAX_FILE_BYTES,
        key: Callable[[str], str] | None = None,
        cells: bool = True,
    ) -> None:
        self._file = file
        #: False: group the rows into orders only (no cell read; the errors are the grouping's own:
        #: rows apart, rows without a number) — a fast first pass that finds the orders whose rows are apart
        self._cells = cells
        #: an order's identity from its number: rows whose numbers have one key are one order
        self._key = key or (lambda number: number)
        self.max_bytes = max_bytes
        self.warnings: list[FileWarning] = []
        self._warning_counts: dict[str, int] = {}
        #: data rows read (blank ones included), and blank rows skipped
        self.rows_read = 0
        self.blank_rows = 0
        self.orders_read = 0
        self._bytes = 0
        self._record = 0  # records read so far, the header included (the next one is row _record + 1)

        head = file.read(spec.HEAD_BYTES)
        self._count(len(head))
        if not head.strip(b" \t\r\n") or head.strip(b" \t\r\n") == _BOM:
            raise EmptyFile("The file is empty.", hint="Export the orders with a header row and one row per line item.")
        _sniff_binary(head)
        has_bom = head.startswith(_BOM)
        if has_bom:
            head = head[len(_BOM) :]
            self._bytes_skipped = len(_BOM)
        else:
            self._bytes_skipped = 0
        self.detected_encoding = encoding is None
        self.encoding = encoding or (Encoding.UTF8 if has_bom else _detect_encoding(head))
        if encoding is Encoding.WINDOWS_1252 and (has_bom or _valid_non_ascii_utf8(head)):
            self._warn(
                "encoding_looks_utf8",
                "You chose Windows-1252 but the file looks like UTF-8: accented letters would read wrongly "
                '("CafÃ©"). Choose UTF-8 or auto.',
            )
        self._lines = self._decoded_lines(head)
        first = next(self._lines, None)
        if first is None:
            raise EmptyFile("The file is empty.", hint="Export the orders with a header row and one row per line item.")
        self.detected_delimiter = delimiter is None
        self.delimiter = delimiter or _detect_delimiter(first)
        self._pending_first: str | None = first
        self._csv = csv.reader(
            self._source(), delimiter=self.delimiter.value, quotechar='"', doublequote=True, strict=False
        )
        header = self._next_record()
        if header is None or not any(h.strip() for h in header):
            raise EmptyFile("The file has no header row.", hint="Put the column names on the first row.")
        self._read_header(header, first)
        self._orders = self._generate()

    # --- bytes → lines → records -------------------------------------------------------------

    def _count(self, n: int) -> None:
        self._bytes += n
        if self._bytes > self.max_bytes:
            limit = spec.describe_bytes(self.max_bytes)
            raise FileTooLarge(
                f"The file is larger than the import limit of {limit} ({self.max_bytes:,} bytes).",
                hint=f"Split it into files of at most {limit}, keeping each order's rows in one file, "
                "and import them one by one.",
                limit=self.max_bytes,
            )

    def _binary_lines(self, head: bytes) -> Iterator[tuple[int, bytes]]:
        """``(offset, line)`` pairs, each line with its ``\\n``, read without ever holding more than one."""
        offset = self._bytes_skipped
        start = 0
        while True:
            nl = head.find(b"\n", start)
            if nl < 0:
                break
            yield offset, head[start : nl + 1]
            offset += nl + 1 - start
            start = nl + 1
        rest = head[start:]
        while True:
            more = self._file.readline(spec.MAX_LINE_BYTES + 1 - len(rest))
            self._count(len(more))
            line = rest + more
            rest = b""
            if not line:
                return
            if len(line) > spec.MAX_LINE_BYTES and not line.endswith(b"\n"):
                raise MalformedCsv(
                    f"Row {self._record + 1} is longer than {spec.describe_bytes(spec.MAX_LINE_BYTES)}.",
                    hint="Check that row: a line that long is most likely not one order line.",
                    row=self._record + 1,
                )
            yield offset, line
            offset += len(line)
            if not line.endswith(b"\n"):
                return

    def _decoded_lines(self, head: bytes) -> Iterator[str]:
        codec = "utf-8" if self.encoding is Encoding.UTF8 else "cp1252"
        for offset, raw in self._binary_lines(head):
            try:
                yield raw.decode(codec)
            except UnicodeDecodeError as exc:
                raise self._wrong_encoding(raw, offset, exc) from exc

    def _wrong_encoding(self, raw: bytes, offset: int, exc: UnicodeDecodeError) -> WrongEncoding:
        row = self._record + 1
        bad = raw[exc.start]
        other = self.encoding.other
        readable = True
        try:
            raw.decode("utf-8" if other is Encoding.UTF8 else "cp1252")
        except UnicodeDecodeError:
            readable = False
        how = "detected" if self.detected_encoding else "chosen"
        message = (
            f"Row {row} cannot be read as {self.encoding.value} (the encoding {how}): "
            f"byte 0x{bad:02X} at offset {offset + exc.start:,} of the file."
        )
        if readable:
            hint = f"The file is probably {other.value}: choose the encoding {other.value} and import it again."
        else:
            hint = f"The file is in neither UTF-8 nor Windows-1252. {_SAVE_AS_CSV}"
        return WrongEncoding(message, hint=hint, row=row, offset=offset + exc.start, suggested=other.value)

    def _source(self) -> Iterator[str]:
        if self._pending_first is not None:
            first, self._pending_first = self._pending_first, None
            yield first
        yield from self._lines

    def _next_record(self) -> list[str] | None:
        try:
            record = next(self._csv, None)
        except csv.Error as exc:
            row = self._record + 1
            text = str(exc)
            if "field larger than field limit" in text:
                raise MalformedCsv(
                    f"Row {row} has a cell longer than {spec.MAX_CELL_CHARS:,} characters.",
                    hint=f"Most likely a double quote opens a value on row {row} and never closes: check that row.",
                    row=row,
                ) from exc
            if "NUL" in text:
                raise NotCsv(f"Row {row} holds a NUL byte: the file is not text.", hint=_SAVE_AS_CSV, row=row) from exc
            raise MalformedCsv(
                f"Row {row} cannot be read as CSV: {text}.", hint="Check the quoting on that row.", row=row
            ) from exc
        if record is not None:
            self._record += 1
        return record

    # --- header ------------------------------------------------------------------------------

    def _read_header(self, header: list[str], first_line: str) -> None:
        names = [_normalise_header(h) for h in header]
        self.header = tuple(names)
        seen: dict[str, int] = {}
        self._known: list[tuple[int, spec.Column]] = []
        self._custom: dict[str, str] = {}
        self.unknown: list[str] = []
        for i, name in enumerate(names):
            if not name:
                continue
            if name in seen:
                raise DuplicateColumn(
                    f"The column {name} appears twice in the header (columns {seen[name] + 1} and {i + 1}).",
                    hint="Keep one of them and import the file again.",
                    row=1,
                )
            seen[name] = i
            column = spec.BY_NAME.get(name)
            if column is not None:
                self._known.append((i, column))
            elif name.startswith(spec.CUSTOM_PREFIX) and len(name) > len(spec.CUSTOM_PREFIX):
                key = name
                self._custom[key] = name[len(spec.CUSTOM_PREFIX) :]
                self._known.append((i, spec.Column(key, Kind.TEXT, Level.ORDER, False, "custom field", "")))
            else:
                self.unknown.append(header[i].strip())
                self._warn(
                    "column_unknown",
                    f"The column {header[i].strip()!r} is not one the import reads: it is ignored.",
                    row=1,
                    column=header[i].strip(),
                )
        missing = tuple(name for name in spec.REQUIRED if name not in seen)
        if missing:
            hint = "Add the missing columns (see the template), then import the file again."
            if "\t" in first_line and self.delimiter.value not in first_line:
                hint = "The file seems to be tab-separated: " + _SAVE_AS_CSV
            elif len(names) == 1 and self.detected_delimiter:
                hint = "Only one column was found: the separator must be a comma or a semicolon. " + hint
            raise MissingColumns(
                f"Required column{'s' if len(missing) > 1 else ''} missing: {', '.join(missing)}.",
                hint=hint,
                missing=missing,
            )
        self.columns = tuple(c.name for _, c in self._known)
        #: per known column: its position, name, reader, whether order-level, required, free text
        self._plan = [
            (i, c.name, values.READERS[c.kind], c.level is Level.ORDER, c.required, c.kind is Kind.TEXT)
            for i, c in self._known
            if c.name != "order_number"  # read by the grouping: rows of one key are one order
        ]
        self._width = len(header)
        self._number_at = seen["order_number"]

    # --- warnings ------------------------------------------------------------------------------

    def _warn(self, code: str, message: str, *, row: int | None = None, column: str = "") -> None:
        count = self._warning_counts.get(code, 0) + 1
        self._warning_counts[code] = count
        if len(self.warnings) < spec.MAX_WARNINGS:
            self.warnings.append(FileWarning(code, message, row, column))

    @property
    def bytes_read(self) -> int:
        """Bytes read from the file so far (for a progress bar over the file's size)."""
        return self._bytes

    @property
    def warning_counts(self) -> dict[str, int]:
        """How many warnings of each code (more than :attr:`warnings` keeps, past the cap)."""
        counts = dict(self._warning_counts)
        if self.blank_rows:
            counts["rows_blank"] = self.blank_rows
        return counts

    # --- rows → orders -------------------------------------------------------------------------

    def __iter__(self) -> Iterator[ImportOrder]:
        return self._orders

    def _generate(self) -> Iterator[ImportOrder]:
        seen: dict[str, int] = {}
        group: _Group | None = None
        while True:
            record = self._next_record()
            if record is None:
                break
            row = self._record
            self.rows_read += 1
            if not any(cell.strip() for cell in record):
                self.blank_rows += 1
                continue
            number = record[self._number_at].strip() if self._number_at < len(record) else ""
            if not number:
                if group is not None:  # a row of no order ends the order above it
                    self.orders_read += 1
                    yield group.freeze(self._custom)
                    group = None
                self.orders_read += 1
                yield ImportOrder(
                    "",
                    (row,),
                    (),
                    {},
                    {},
                    (),
                    (
                        RowError(
                            row,
                            "order_number",
                            "",
                            "value_missing",
                            "is empty: the row belongs to no order",
                            "Write the order's number on every row of the order.",
                        ),
                    ),
                )
                continue
            key = self._key(number)
            if group is None or key != group.key:
                if group is not None:
                    self.orders_read += 1
                    yield group.freeze(self._custom)
                group = _Group(number, key)
                if key in seen:
                    group.apart = True
                    group.errors.append(
                        RowError(
                            row,
                            "order_number",
                            number,
                            "order_rows_apart",
                            f"appeared before, at row {seen[key]}: the rows of one order must be together",
                            "Sort the file by order_number so each order's rows are adjacent, then import it again.",
                        )
                    )
                else:
                    seen[key] = row
            if self._cells:
                self._read_row(group, row, record)
            else:
                group.rows.append(row)
        if group is not None:
            self.orders_read += 1
            yield group.freeze(self._custom)
        if self.blank_rows:
            self.warnings.append(
                FileWarning("rows_blank", f"{self.blank_rows} blank row{'s' if self.blank_rows > 1 else ''} skipped.")
            )
        if self.orders_read == 0:
            raise EmptyFile("The file has a header but no rows.", hint="Add one row per line item under the header.")

    def _read_row(self, group: _Group, row: int, record: list[str]) -> None:
        group.rows.append(row)
        errors = group.errors
        if len(record) > self._width and any(c.strip() for c in record[self._width :]):
            errors.append(
                RowError(
                    row,
                    "",
                    self.delimiter.value.join(record[self._width :])[: limits.QUOTE_CHARS],
                    "row_too_many_fields",
                    f"has {len(record)} fields; the header has {self._width}",
                    f"A value holds the separator ({self.delimiter.label}): put that value in double quotes, "
                    "or remove the extra separators.",
                )
            )
            return
        if len(group.lines) >= limits.MAX_LINES:
            errors.append(
                RowError(
                    row,
                    "",
                    "",
                    "order_too_many_lines",
                    f"is line {len(group.lines) + 1} of order {group.number}: "
                    f"an order has at most {limits.MAX_LINES:,} lines",
                    "Split the order into several orders.",
                )
            )
            return
        line: dict[str, object] = {}
        ok = True
        width = len(record)
        fields = group.fields
        raw = group.raw
        for i, name, read, is_order, required, is_text in self._plan:
            text = record[i] if i < width else ""
            if is_order and raw.get(name) == text:
                continue  # the very text of an earlier row of the order: the same value, already read
            stripped = text.strip()
            if not stripped:
                if required:
                    if is_order and name in fields:
                        continue  # given on an earlier row of the order
                    errors.append(
                        RowError(
                            row, name, "", "value_missing", "is empty", f"Fill in {name}: it is required on every row."
                        )
                    )
                    ok = False
                continue
            try:
                value = read(text)
            except values.CellProblem as problem:
                errors.append(RowError(row, name, _quote(text), problem.code, problem.problem, problem.fix))
                ok = False
                continue
            if is_text:
                too_long = _too_long(name, stripped)
                if too_long is not None:
                    errors.append(RowError(row, name, _quote(text), "value_too_long", *too_long))
                    ok = False
                    continue
                if text.startswith(values.FORMULA_START) or stripped.startswith(values.FORMULA_START):
                    self._warn(
                        "cell_formula",
                        f"Row {row}, {name}: the cell starts like a spreadsheet formula; it is kept as text "
                        "and never written back as a formula.",
                        row=row,
                        column=name,
                    )
            if not is_order:
                line[name] = value
            elif name in fields:
                if fields[name] != value:
                    first_row = group.field_rows[name]
                    errors.append(
                        RowError(
                            row,
                            name,
                            _quote(text),
                            "order_value_conflict",
                            f"differs from row {first_row}'s value {group.texts[name]!r} for the same order",
                            "Give the order's values on its first row only, or the same value on each of its rows.",
                        )
                    )
                    ok = False
            else:
                fields[name] = value
                raw[name] = text
                group.texts[name] = _quote(text)
                group.field_rows[name] = row
        if ok:
            sku = str(line["sku"])
            title = str(line.get("title") or sku)
            quantity = line["quantity"]
            price = line["unit_price"]
            assert isinstance(quantity, int) and isinstance(price, Decimal)
            group.lines.append(ImportLine(row, sku, title, quantity, price))


def _quote(text: str) -> str:
    return limits.shorten(text, limits.QUOTE_CHARS)


_KEY_LIMITS = {
    "order_number": limits.EXTERNAL_ID.max_chars,
    "sku": limits.SKU.max_chars,
    "shipping_method": limits.SHIPPING_METHOD.max_chars,
}


def _too_long(name: str, text: str) -> tuple[str, str] | None:
    maximum = _KEY_LIMITS.get(name)
    if maximum is None or len(text) <= maximum:
        return None
    return f"is {len(text):,} characters long; at most {maximum:,} are accepted", "Shorten it."


def _valid_non_ascii_utf8(head: bytes) -> bool:
    if head.isascii():
        return False
    return _detect_encoding(head) is Encoding.UTF8
