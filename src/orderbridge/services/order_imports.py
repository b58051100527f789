"""Orders imported from a CSV file: a preview that writes nothing, then a confirmation that imports.

The file is read by the streaming reader (:mod:`orderbridge.domain.csv_import`), each order's rows
become a :class:`~orderbridge.domain.manual.Draft` validated by the same rules as a form's
(:func:`~orderbridge.domain.manual.validate`), and every order goes through the manual channel's
own doors (``services/manual_orders.py``): :func:`~orderbridge.services.manual_orders.preview`
to say what would happen, :func:`~orderbridge.services.manual_orders.submit` to write it through
``ingest_records`` — so an imported order gets every guarantee of a channel order (decision 140).

- **Preview** (:func:`plan`): one pass over the file, in batches of :data:`BATCH` orders, each
  judged against the ledger in a read transaction: *new*, *unchanged* (already imported, the same),
  *updated* (already imported, changed: an update of that order), with the state the pipeline
  would give it (held because SKU X is unmapped at destination D …), or *rejected* with every row
  error. Nothing is written.
- **Confirm** (:func:`confirm`): two passes over the same bytes. The first only decodes and groups
  the rows (no database, no cell read): a file that cannot be read fails there, before anything is
  written, and it finds the orders whose rows are apart — whose first part may look valid. The
  second reads every cell and writes the other orders through ``submit`` in transactions of
  :data:`BATCH` orders; an order with a row error is left out whole, and ``submit`` validates each
  draft whole and writes nothing of an invalid one. So an order with any rejected row is never
  half imported, and one bad order never stops another (decision 143).
- **Identity**: an imported order *is* the manual channel's order of that number (its key,
  decision 128). Importing the same file again finds every order unchanged and skips it as a
  duplicate; a file that overlaps with changed content updates those orders — a new version, never
  a second order (decision 144).
- **The upload** is kept between preview and confirmation (:func:`store_upload`, decision 141):
  its bytes in the database in chunks, found by a random token within its tenant, usable for
  :data:`UPLOAD_TTL`; confirming re-reads those very bytes. A second confirmation of one upload
  answers the first one's report and imports nothing.
- **The report** (:class:`Report`) says for every row: imported as order N, updated order N,
  skipped as a duplicate, or rejected and why; :func:`report_csv` writes it as CSV with every cell
  a spreadsheet would run as a formula neutralised (decision 145).
"""

from __future__ import annotations

import csv
import hashlib
import io
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any, BinaryIO

from orderbridge.domain import manual
from orderbridge.domain.csv_import import (
    MAX_FILE_BYTES,
    CsvOrders,
    Delimiter,
    Encoding,
    FileTooLarge,
    FileWarning,
    ImportOrder,
    RowError,
    neutralise,
)
from orderbridge.domain.csv_import.drafts import row_errors, to_draft
from orderbridge.domain.csv_import.spec import describe_bytes
from orderbridge.domain.manual import Source
from orderbridge.domain.reasons import Reason
from orderbridge.errors import Conflict, NotFound
from orderbridge.services import manual_orders
from orderbridge.services.audit_trail import record_action
from orderbridge.services.manual_orders import Submission, Submitted
from orderbridge.services.principals import Actor
from orderbridge.services.scope import Scope
from orderbridge.storage.repos import imports as upload_repo

#: orders per batch: one read transaction each in a preview, one write transaction each in a confirmation
BATCH = 500
#: how long an upload may be confirmed after it was previewed
UPLOAD_TTL = timedelta(hours=24)

NEW = manual_orders.NEW
UPDATED = manual_orders.UPDATED
UNCHANGED = manual_orders.UNCHANGED
REJECTED = "rejected"

_SORT_FIX = "Sort the file by order_number so each order's rows are adjacent, then import it again."
#: a progress callback: rows read so far, bytes read so far
Progress = Callable[[int, int], None]
#: how a pass opens the file's bytes (again): a file on disk, or a stored upload
Opener = Callable[[], AbstractContextManager[BinaryIO]]


@dataclass(frozen=True, slots=True)
class Choices:
    """What the user chose; ``None``: detect it."""

    encoding: Encoding | None = None
    delimiter: Delimiter | None = None


# --- what a preview shows ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FileFacts:
    filename: str
    encoding: str
    encoding_detected: bool
    delimiter: str
    delimiter_detected: bool
    columns: tuple[str, ...]
    unknown_columns: tuple[str, ...]
    rows: int
    blank_rows: int
    warnings: tuple[FileWarning, ...]
    warning_counts: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "filename": self.filename,
            "encoding": self.encoding,
            "encoding_detected": self.encoding_detected,
            "delimiter": self.delimiter,
            "delimiter_detected": self.delimiter_detected,
            "columns": list(self.columns),
            "unknown_columns": list(self.unknown_columns),
            "rows": self.rows,
            "blank_rows": self.blank_rows,
            "warnings": [w.as_dict() for w in self.warnings],
            "warning_counts": dict(self.warning_counts),
        }


@dataclass(frozen=True, slots=True)
class PlannedOrder:
    """What will happen to one order of the file."""

    number: str
    rows: tuple[int, ...]
    lines: int
    #: ``new``, ``unchanged``, ``updated`` or ``rejected``
    outcome: str
    #: the state the pipeline would give it (``ready``, ``held``, ``skipped``); None when rejected
    state: str | None = None
    reasons: tuple[Reason, ...] = ()
    errors: tuple[RowError, ...] = ()
    order_id: int | None = None
    total: str = ""

    @property
    def first_row(self) -> int:
        return self.rows[0]

    def describe(self) -> str:
        """The sentence a person reads: what will happen to this order."""
        if self.outcome == REJECTED:
            return f"rejected: {len(self.errors)} error{'s' if len(self.errors) != 1 else ''}"
        what = {
            NEW: "new",
            UNCHANGED: "already imported — unchanged (skipped)",
            UPDATED: "already imported — changed (an update)",
        }[self.outcome]
        if self.state == "held" and self.reasons:
            return f"{what}; will be held: " + "; ".join(r.message for r in self.reasons)
        if self.state == "skipped" and self.reasons:
            return f"{what}; will be skipped: " + "; ".join(r.message for r in self.reasons)
        return what

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "rows": list(self.rows),
            "lines": self.lines,
            "outcome": self.outcome,
            "state": self.state,
            "what_happens": self.describe(),
            "order_id": self.order_id,
            "total": self.total,
            "reasons": [
                {"code": r.code, "value": r.value, "message": r.message, "fix": r.fix.text} for r in self.reasons
            ],
            "errors": [e.as_dict() for e in self.errors],
        }


@dataclass(slots=True)
class Preview:
    file: FileFacts
    orders: list[PlannedOrder]
    token: str | None = None

    @property
    def counts(self) -> dict[str, int]:
        out = {NEW: 0, UPDATED: 0, UNCHANGED: 0, REJECTED: 0, "held": 0, "orders": len(self.orders)}
        for o in self.orders:
            out[o.outcome] += 1
            if o.state == "held" and o.outcome != UNCHANGED:
                out["held"] += 1
        out["rows"] = self.file.rows
        return out

    @property
    def errors(self) -> list[RowError]:
        return sorted((e for o in self.orders for e in o.errors), key=lambda e: e.row)

    def as_dict(self, *, max_orders: int | None = None) -> dict[str, Any]:
        shown = self.orders if max_orders is None else self.orders[:max_orders]
        return {
            "token": self.token,
            "file": self.file.as_dict(),
            "counts": self.counts,
            "orders": [o.as_dict() for o in shown],
            "orders_shown": len(shown),
        }


# --- reading ----------------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Read:
    """One order read from the file: its rows, its draft, and every error found so far."""

    order: ImportOrder
    key: str
    draft: manual.Draft | None
    errors: list[RowError] = field(default_factory=list)


def _read_orders(reader: CsvOrders) -> Iterator[_Read]:
    """Each order of the file with its draft (None when the reader found errors). The draft is not
    validated here: ``manual_orders.preview`` and ``submit`` validate every draft they are given, and
    their problems come back as row errors (:func:`row_errors`) — once, not twice."""
    for order in reader:
        key = manual.order_key(order.number) if order.number else ""
        draft = to_draft(order) if not order.errors else None
        yield _Read(order, key, draft, list(order.errors))


def _facts(reader: CsvOrders, filename: str) -> FileFacts:
    return FileFacts(
        filename,
        reader.encoding.value,
        reader.detected_encoding,
        reader.delimiter.value,
        reader.detected_delimiter,
        reader.columns,
        tuple(reader.unknown),
        reader.rows_read,
        reader.blank_rows,
        tuple(reader.warnings),
        reader.warning_counts,
    )


def _open_reader(file: BinaryIO, choices: Choices, max_bytes: int) -> CsvOrders:
    return CsvOrders(
        file, encoding=choices.encoding, delimiter=choices.delimiter, max_bytes=max_bytes, key=manual.order_key
    )


def _batches(items: Iterator[_Read], size: int) -> Iterator[list[_Read]]:
    batch: list[_Read] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _rows_apart(planned: list[PlannedOrder], apart: dict[str, list[RowError]], keys: list[str]) -> None:
    """Reject every part of an order whose rows are apart (its first part looked valid when read)."""
    for i, (plan_, key) in enumerate(zip(planned, keys, strict=True)):
        if key in apart and plan_.outcome != REJECTED:
            planned[i] = PlannedOrder(plan_.number, plan_.rows, plan_.lines, REJECTED, errors=tuple(apart[key]))


def plan(
    scope: Scope,
    file: BinaryIO,
    *,
    filename: str,
    choices: Choices = Choices(),
    max_bytes: int = MAX_FILE_BYTES,
    progress: Progress | None = None,
) -> Preview:
    """What importing ``file`` would do to each of its orders, writing nothing (see the module docstring).

    A file that cannot be read at all raises its :class:`~orderbridge.domain.csv_import.ImportFileError`."""
    reader = _open_reader(file, choices, max_bytes)
    now = scope.now()
    planned: list[PlannedOrder] = []
    keys: list[str] = []
    apart: dict[str, list[RowError]] = {}
    for batch in _batches(_read_orders(reader), BATCH):
        valid = [r for r in batch if r.draft is not None]
        with scope.read() as conn:
            judged = manual_orders.preview(
                conn,
                scope.tenant_id,
                [Submission(r.draft, Source.imported(filename, r.order.first_row)) for r in valid if r.draft],
                now,
            )
        verdicts = iter(judged)
        for r in batch:
            keys.append(r.key)
            if r.order.apart:
                apart.setdefault(r.key, []).extend(r.errors)
            if r.draft is None:
                planned.append(_rejected(r))
                continue
            planned.append(_planned(r, next(verdicts)))
        if progress is not None:
            progress(reader.rows_read, reader.bytes_read)
    _rows_apart(planned, apart, keys)
    return Preview(_facts(reader, filename), planned)


def _rejected(r: _Read) -> PlannedOrder:
    return PlannedOrder(r.order.number, r.order.rows, len(r.order.rows), REJECTED, errors=tuple(r.errors))


def _planned(r: _Read, verdict: Submitted) -> PlannedOrder:
    if verdict.outcome == manual_orders.INVALID:
        return PlannedOrder(
            r.order.number, r.order.rows, len(r.order.lines), REJECTED, errors=row_errors(r.order, verdict.problems)
        )
    return PlannedOrder(
        r.order.number,
        r.order.rows,
        len(r.order.lines),
        verdict.outcome,
        verdict.state,
        verdict.reasons,
        order_id=verdict.order_id,
        total=_total(r.order),
    )


def _total(order: ImportOrder) -> str:
    """The order's total as the preview shows it (lines + shipping + tax - discount, the draft's rule)."""
    f = order.fields
    amount = sum((ln.unit_price * ln.quantity for ln in order.lines), Decimal(0))
    for name, sign in (("shipping_price", 1), ("tax", 1), ("discount", -1)):
        value = f.get(name)
        if isinstance(value, Decimal):
            amount += sign * value
    return f"{amount} {f.get('currency', '')}"


# --- confirming ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ReportRow:
    """What became of one row of the file."""

    row: int
    order_number: str
    sku: str
    #: ``imported`` (a new order), ``updated``, ``skipped`` (a duplicate: already imported, unchanged), ``rejected``
    outcome: str
    order_id: int | None
    state: str | None
    message: str

    def as_list(self) -> list[Any]:
        return [self.row, self.order_number, self.sku, self.outcome, self.order_id, self.state, self.message]

    @classmethod
    def from_list(cls, data: Sequence[Any]) -> ReportRow:
        row, number, sku, outcome, order_id, state, message = data
        return cls(int(row), str(number), str(sku), str(outcome), order_id, state, str(message))


REPORT_COLUMNS = ("row", "order_number", "sku", "outcome", "order_id", "state", "message")


@dataclass(slots=True)
class Report:
    filename: str
    rows: list[ReportRow]
    counts: dict[str, int]

    def as_dict(self, *, max_rows: int | None = None) -> dict[str, Any]:
        shown = self.rows if max_rows is None else self.rows[:max_rows]
        return {
            "filename": self.filename,
            "counts": dict(self.counts),
            "columns": list(REPORT_COLUMNS),
            "rows": [dict(zip(REPORT_COLUMNS, r.as_list(), strict=True)) for r in shown],
            "rows_shown": len(shown),
        }

    def stored(self) -> dict[str, Any]:
        return {"filename": self.filename, "counts": self.counts, "rows": [r.as_list() for r in self.rows]}

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> Report:
        return cls(str(data["filename"]), [ReportRow.from_list(r) for r in data["rows"]], dict(data["counts"]))


def _report_rejected(r: _Read) -> list[ReportRow]:
    by_row: dict[int, list[RowError]] = {}
    for e in r.errors:
        by_row.setdefault(e.row, []).append(e)
    lines = {ln.row: ln.sku for ln in r.order.lines}
    out = []
    first_bad = min(by_row) if by_row else r.order.first_row
    for row in r.order.rows:
        errs = by_row.get(row)
        if errs:
            message = " ".join(
                f"{e.column or 'row'} {e.value!r}: {e.problem}. {e.fix}"
                if e.value
                else f"{e.column or 'row'}: {e.problem}. {e.fix}"
                for e in errs
            )
        else:
            message = (
                f"not imported: row {first_bad} of the same order has an error "
                "(an order is imported whole or not at all)"
            )
        out.append(ReportRow(row, r.order.number, lines.get(row, ""), REJECTED, None, None, message))
    return out


def _report_written(r: _Read, done: Submitted) -> list[ReportRow]:
    if done.outcome == manual_orders.INVALID:
        r.errors = list(row_errors(r.order, done.problems))
        return _report_rejected(r)
    outcome = {NEW: "imported", UPDATED: "updated", UNCHANGED: "skipped"}[done.outcome]
    if done.outcome == NEW:
        message = f"imported as order {done.number} (id {done.order_id})"
    elif done.outcome == UPDATED:
        message = f"updated order {done.number} (id {done.order_id}): the file's version is a new version of it"
    else:
        message = f"skipped as a duplicate: order {done.number} (id {done.order_id}) was already imported, unchanged"
    if done.state == "held" and done.reasons:
        message += "; held: " + "; ".join(x.message for x in done.reasons)
    return [
        ReportRow(ln.row, r.order.number, ln.sku, outcome, done.order_id, done.state, message) for ln in r.order.lines
    ]


def _rejected_keys(opener: Opener, choices: Choices, max_bytes: int) -> set[str]:
    """Pass one of a confirmation: the orders whose rows are apart in the file (no database, no cell
    read: the rows are only grouped). Every other rejection is of one group of rows, which the
    writing pass leaves out whole; an order in two groups is the one a group cannot decide alone.
    A file that cannot be read at all fails here, before anything is written."""
    rejected: set[str] = set()
    with opener() as file:
        reader = CsvOrders(
            file,
            encoding=choices.encoding,
            delimiter=choices.delimiter,
            max_bytes=max_bytes,
            key=manual.order_key,
            cells=False,
        )
        for order in reader:
            if order.apart:
                rejected.add(manual.order_key(order.number))
    return rejected


def confirm(
    actor: Actor,
    opener: Opener,
    *,
    filename: str,
    choices: Choices = Choices(),
    max_bytes: int = MAX_FILE_BYTES,
    progress: Progress | None = None,
    upload_id: int | None = None,
) -> Report:
    """Import the file ``opener`` opens (twice: see the module docstring); the per-row report."""
    scope = actor.scope
    rejected = _rejected_keys(opener, choices, max_bytes)
    rows: list[ReportRow] = []
    counts = {"imported": 0, "updated": 0, "skipped": 0, "rejected": 0, "orders": 0, "rows": 0}
    with opener() as file:
        reader = _open_reader(file, choices, max_bytes)
        for batch in _batches(_read_orders(reader), BATCH):
            go = [r for r in batch if r.draft is not None and r.key not in rejected]
            now = scope.now()
            with scope.transaction() as conn:
                done = manual_orders.submit(
                    conn,
                    scope.tenant_id,
                    [
                        Submission(r.draft, Source.imported(filename, r.order.first_row, by=actor.principal.name))
                        for r in go
                        if r.draft
                    ],
                    now,
                    box=scope.box,
                    number_required=True,
                )
                if upload_id is not None:
                    upload_repo.set_progress(conn, upload_id, reader.rows_read)
            written = dict(zip((id(r) for r in go), done, strict=True))
            for r in batch:
                counts["orders"] += 1
                verdict = written.get(id(r))
                if verdict is None:
                    if not r.errors:
                        r.errors = [
                            RowError(
                                r.order.first_row,
                                "order_number",
                                r.order.number,
                                "order_rows_apart",
                                "the order's rows are apart in the file: another part of it has an error",
                                _SORT_FIX,
                            )
                        ]
                    found = _report_rejected(r)
                    counts["rejected"] += 1
                else:
                    found = _report_written(r, verdict)
                    counts[found[0].outcome if found else "rejected"] += 1
                rows.extend(found)
            if progress is not None:
                progress(reader.rows_read, reader.bytes_read)
    rows.sort(key=lambda x: x.row)
    counts["rows"] = len(rows)
    report = Report(filename, rows, counts)
    record_action(
        actor,
        "orders.import",
        "import",
        upload_id,
        f"imported {filename}: {counts['imported']} new, {counts['updated']} updated, "
        f"{counts['skipped']} skipped as duplicates, {counts['rejected']} rejected",
        {"filename": filename, **counts},
    )
    return report


def report_csv(report: Report) -> Iterator[str]:
    """The report as CSV text, line by line; a cell a spreadsheet would run as a formula is neutralised."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")

    def flush() -> str:
        text = out.getvalue()
        out.seek(0)
        out.truncate()
        return text

    writer.writerow(REPORT_COLUMNS)
    yield flush()
    for r in report.rows:
        writer.writerow([neutralise("" if v is None else str(v)) for v in r.as_list()])
        yield flush()


# --- a file on disk (the CLI) -------------------------------------------------------------------------------
def file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(upload_repo.CHUNK_BYTES), b""):
            h.update(chunk)
    return h.hexdigest()


class FileChanged(Conflict):
    code = "import_file_changed"


def path_opener(path: str, digest: str) -> Opener:
    """Opens ``path`` for each pass, refusing it if its bytes are no longer those previewed."""

    def opener() -> AbstractContextManager[BinaryIO]:
        if file_digest(path) != digest:
            raise FileChanged(
                f"{path} changed since it was previewed", hint="Import it again: the preview is made anew."
            )
        return open(path, "rb")

    return opener


# --- an upload (the API and the portal) ------------------------------------------------------------------------
def store_upload(
    actor: Actor,
    stream: BinaryIO,
    *,
    filename: str,
    choices: Choices = Choices(),
    max_bytes: int = MAX_FILE_BYTES,
) -> str:
    """Keep an uploaded file for its preview and confirmation, chunk by chunk; its token.

    Over ``max_bytes`` nothing is kept: :class:`~orderbridge.domain.csv_import.FileTooLarge`."""
    scope = actor.scope
    now = scope.now()
    token = secrets.token_urlsafe(24)
    digest = hashlib.sha256()
    size = 0
    name = (filename or "upload.csv").replace("\x00", "")[-200:]
    with scope.transaction() as conn:
        upload_repo.purge_expired(conn, scope.tenant_id, now)
        upload_id = upload_repo.create(
            conn,
            scope.tenant_id,
            token=token,
            filename=name,
            encoding=choices.encoding.value if choices.encoding else None,
            delimiter=choices.delimiter.value if choices.delimiter else None,
            created_by=actor.principal.name,
            now=now,
            expires_at=now + UPLOAD_TTL,
        )
        seq = 0
        while True:
            chunk = stream.read(upload_repo.CHUNK_BYTES)
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                limit = describe_bytes(max_bytes)
                raise FileTooLarge(
                    f"The file is larger than the import limit of {limit} ({max_bytes:,} bytes).",
                    hint=f"Split it into files of at most {limit}, keeping each order's rows in one file, "
                    "and import them one by one.",
                    limit=max_bytes,
                )
            digest.update(chunk)
            upload_repo.add_chunk(conn, upload_id, seq, chunk)
            seq += 1
        upload_repo.seal(conn, upload_id, size, digest.hexdigest())
    return token


@dataclass(frozen=True, slots=True)
class Upload:
    id: int
    token: str
    filename: str
    choices: Choices
    size: int
    expired: bool
    confirmed: bool
    rows_done: int
    report: Report | None


def _upload(scope: Scope, token: str) -> Upload:
    with scope.read() as conn:
        row = upload_repo.by_token(conn, scope.tenant_id, token) if len(token) <= 64 else None
    if row is None:
        raise NotFound("no such import (or it belongs to another tenant)", hint="Upload the file again to preview it.")
    return Upload(
        int(row.id),
        str(row.token),
        str(row.filename),
        Choices(Encoding(row.encoding) if row.encoding else None, Delimiter(row.delimiter) if row.delimiter else None),
        int(row.size),
        row.expires_at < scope.now(),
        row.confirmed_at is not None,
        int(row.rows_done),
        Report.from_stored(row.report) if row.report else None,
    )


def upload_status(scope: Scope, token: str) -> Upload:
    return _upload(scope, token)


def _opener(scope: Scope, upload_id: int) -> Opener:
    def opener() -> AbstractContextManager[BinaryIO]:
        return upload_repo.open_upload(scope.read, upload_id)

    return opener


def preview_upload(scope: Scope, token: str, *, progress: Progress | None = None) -> Preview:
    upload = _upload(scope, token)
    _usable(upload)
    with _opener(scope, upload.id)() as file:
        found = plan(scope, file, filename=upload.filename, choices=upload.choices, progress=progress)
    found.token = upload.token
    return found


def _usable(upload: Upload) -> None:
    if upload.expired and not upload.confirmed:
        raise Conflict(
            f"the preview of {upload.filename} expired (an upload may be confirmed for {UPLOAD_TTL})",
            hint="Upload the file again to preview it anew.",
        )


def confirm_upload(actor: Actor, token: str, *, progress: Progress | None = None) -> Report:
    """Import a stored upload; a second confirmation answers the first one's report, importing nothing."""
    scope = actor.scope
    upload = _upload(scope, token)
    if upload.report is not None:
        return upload.report
    _usable(upload)
    with scope.transaction() as conn:
        claimed = upload_repo.claim_confirmation(conn, upload.id, actor.principal.name, scope.now())
    if not claimed:
        raise Conflict(
            f"{upload.filename} is being imported already", hint="Wait for its report: the page shows its progress."
        )
    try:
        report = confirm(
            actor,
            _opener(scope, upload.id),
            filename=upload.filename,
            choices=upload.choices,
            progress=progress,
            upload_id=upload.id,
        )
    except BaseException:
        with scope.transaction() as conn:
            upload_repo.release_confirmation(conn, upload.id)
        raise
    with scope.transaction() as conn:
        upload_repo.save_report(conn, upload.id, report.stored())
    return report


def upload_report(scope: Scope, token: str) -> Report:
    upload = _upload(scope, token)
    if upload.report is None:
        raise Conflict(f"{upload.filename} has not been imported yet", hint="Confirm the preview first.")
    return upload.report
