"""File export as a destination: orders written as CSV or XML files into a drop directory that an
accounting or ERP package imports on its own schedule (``docs/connectors/file-export.md``).

Posting. :meth:`FileExportDestination.post_orders` first settles what a killed run left
(:meth:`~.store.DropDirectory.settle`), then answers every order the manifest already holds in a
file that was not rejected with that file's document id (``<file>#<position>``) — written nothing
— and writes the others: one file for the whole call (``per: batch``) or one per order
(``per: order``), each atomically (temp, fsync, rename, fsync the directory). So the exactly-once
rules of ``services/posting.py`` hold: a re-run of a batch whose results were lost finds the
same file and positions instead of a second file.

An order the file's encoding cannot hold (CSV only: XML carries any character as a reference) is
refused alone with :class:`DestinationRejected` naming the character; the others are written.

Watching (``WATCH_DELIVERIES``). :meth:`watch_deliveries` reads, for every file the manifest
holds, what the package did with it: an error file beside it (``error_pattern``, default
``{name}.err``) or the file in the ``error_dir`` → rejected, with the error file's text as the
package's message; an acknowledgement (``ack_pattern``, default ``{name}.ok``), the file in the
``processed_dir``, or the file gone → imported; else waiting, due by its write time plus
``pickup_limit_hours``. The hub turns those into timeline events and holds (``services/deliveries.py``).

Filesystem failures are not about an order and raise: the directory missing or not a directory →
:class:`SettingsError` (fix: the ``directory`` setting); anything else (a full disk, an I/O error)
→ :class:`RemoteUnavailable`: the postings stay pending and the next run settles and retries.
"""

from __future__ import annotations

import errno
import hashlib
import string
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from orderbridge.connectors.base import (
    Capability,
    Declaration,
    Delivery,
    DeliveryFate,
    OutgoingOrder,
    PostResult,
    Role,
    Setting,
    SettingScope,
)
from orderbridge.connectors.file_export import layouts
from orderbridge.connectors.file_export.store import DropDirectory, Manifest, Written, safe_part, temp_name
from orderbridge.errors import DestinationRejected, RemoteUnavailable, SettingsError
from orderbridge.fixes import Fix, FixAction

SYSTEM = "File export"
#: how much of an error file is read as the package's message
MESSAGE_BYTES = 4096
NAME_FIELDS = frozenset({"batch", "date", "time", "number", "order_key", "ext"})


def _fix(setting: str, text: str) -> Fix:
    return Fix.of(FixAction.SET_SETTING, text, setting=setting)


class FileExportDestination:
    declaration = Declaration(
        kind="file_export",
        role=Role.DESTINATION,
        title="File export (CSV / XML drop directory)",
        capabilities=frozenset({Capability.POST_ORDERS, Capability.WATCH_DELIVERIES}),
        credentials=(),
        settings=(
            Setting(
                "directory", "the drop directory the package imports from (absolute path; the base URL if empty)", ""
            ),
            Setting("layout", "'csv' (one row per order line) or 'xml' (one <Order> per order)", "csv"),
            Setting(
                "template",
                "columns ([field or {field, header}]), separator, encoding, header (true/false), xml_elements "
                "({default name: name}); see docs/connectors/file-export.md",
                {},
            ),
            Setting(
                "file_name",
                "the file name pattern: {batch} {date} {time} {number} {order_key} {ext}",
                "orders-{date}-{batch}.{ext}",
            ),
            Setting("per", "'batch' (one file per posting batch) or 'order' (one file per order)", "batch"),
            Setting(
                "ack_pattern", "the acknowledgement file the package writes beside a file it imported", "{name}.ok"
            ),
            Setting("error_pattern", "the error file the package writes beside a file it refused", "{name}.err"),
            Setting("processed_dir", "a sub-folder the package moves imported files to ('' : none)", ""),
            Setting("error_dir", "a sub-folder the package moves refused files to ('' : none)", ""),
            Setting("pickup_limit_hours", "hours after which a file not picked up holds its orders", 4),
            Setting("max_batch", "orders per file when per is 'batch'", 500),
            Setting(
                "watch_days", "days a taken or refused file is still reported to the hub (a waiting one: always)", 14
            ),
            # a package reads what it is given: nothing to map, the channel's SKUs pass unchanged
            Setting(
                "sku_mapping",
                "'identity': the channel's SKU is written (mappings apply when set)",
                "identity",
                SettingScope.HUB,
            ),
            Setting("shipping_mapping", "'none': no shipping service is needed", "none", SettingScope.HUB),
            Setting(
                "post_schedule",
                "when the runtime posts to it: null (whenever orders are ready), 'every 30m', 'every 2h' or "
                "'at 02:00' (UTC; several comma-separated)",
                None,
                SettingScope.HUB,
            ),
        ),
        document_key="ob-{channel_id}-{external_id}",
        docs="docs/connectors/file-export.md",
    )
    #: orders per file in ``per: batch`` (the connection's ``max_batch`` setting overrides it)
    max_batch = 500

    def __init__(
        self,
        base_url: str,
        credentials: Mapping[str, str],
        settings: Mapping[str, Any],
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        merged = {**self.declaration.default_settings, **settings}
        directory = str(merged.get("directory") or base_url or "")
        if directory.startswith("file://"):
            directory = directory[len("file://") :]
        if not directory or not Path(directory).is_absolute():
            raise SettingsError(
                f"{SYSTEM} needs an absolute drop directory, not {directory!r}",
                hint="Set the connection's directory setting to the folder the package imports from.",
                fix=_fix("directory", "Set the drop directory the package imports from."),
            )
        self.drop = DropDirectory(Path(directory))
        self.layout = str(merged["layout"]).lower()
        if self.layout not in layouts.LAYOUTS:
            raise SettingsError(
                f"{SYSTEM} layout {self.layout!r} is not csv or xml",
                fix=_fix("layout", "Set the layout to csv or xml."),
            )
        try:
            self.template = layouts.Template.from_setting(merged["template"])
        except layouts.TemplateError as exc:
            raise SettingsError(
                f"{SYSTEM} template: {exc}", fix=_fix("template", "Correct the connection's template.")
            ) from exc
        self.pattern = str(merged["file_name"])
        used = {f for _, f, _, _ in string.Formatter().parse(self.pattern) if f is not None}
        self.per = str(merged["per"])
        if used - NAME_FIELDS or self.per not in ("batch", "order") or ("/" in self.pattern or "\\" in self.pattern):
            raise SettingsError(
                f"{SYSTEM} file name {self.pattern!r} / per {self.per!r} cannot be used",
                hint=f"Placeholders: {', '.join(sorted(NAME_FIELDS))}; no folders; per is batch or order.",
                fix=_fix("file_name", "Correct the file name pattern."),
            )
        self.ack_pattern = str(merged["ack_pattern"] or "")
        self.error_pattern = str(merged["error_pattern"] or "")
        self.processed_dir = str(merged["processed_dir"] or "")
        self.error_dir = str(merged["error_dir"] or "")
        self.pickup_limit = timedelta(hours=float(merged["pickup_limit_hours"]))
        self.max_batch = max(1, int(merged["max_batch"]))
        self.watch_for = timedelta(days=float(merged["watch_days"]))
        self._now = now or (lambda: datetime.now(UTC))

    # --- Connector -----------------------------------------------------------------------------
    def check(self) -> str:
        with self._fs("check"):
            if not self.drop.path.is_dir():
                raise FileNotFoundError(errno.ENOENT, "no such directory", str(self.drop.path))
            probe = self.drop.path / temp_name("orderbridge-check")
            probe.write_bytes(b"")
            probe.unlink()
            waiting = sum(1 for d in self.watch_deliveries() if d.fate is DeliveryFate.WAITING)
        return f"drop directory {self.drop.path} is writable ({waiting} file(s) waiting for the package)"

    def close(self) -> None:
        return None

    # --- posting -------------------------------------------------------------------------------
    def post_orders(self, orders: Sequence[OutgoingOrder]) -> list[PostResult]:
        results: dict[int, PostResult] = {}
        with self._fs("post"):
            manifest = self.drop.settle()
            done = manifest.position_of()
            refused: dict[str, bool] = {}
            todo: list[tuple[int, OutgoingOrder]] = []
            for i, outgoing in enumerate(orders):
                found = done.get(outgoing.idempotency_key)
                if found is not None and found[0] not in refused:
                    refused[found[0]] = self._settled_fate(manifest.files[found[0]])[0] is DeliveryFate.REJECTED
                if found is not None and not refused[found[0]]:
                    results[i] = PostResult(outgoing.order_key, f"{found[0]}#{found[1]}")
                    continue
                refusal = self._refusal(outgoing)
                if refusal is not None:
                    results[i] = refusal
                else:
                    todo.append((i, outgoing))
            groups = [todo[s : s + self.max_batch] for s in range(0, len(todo), self.max_batch)]
            if self.per == "order":
                groups = [[pair] for pair in todo]
            used = set(manifest.files)
            for group in groups:
                name = self._name([o for _, o in group], used)
                used.add(name)
                items = [layouts.Item(o.order_key, pos, o.resolved) for pos, (_, o) in enumerate(group, start=1)]
                self.drop.write(name, self._render(items), [o.idempotency_key for _, o in group], self._now())
                for item, (i, o) in zip(items, group, strict=True):
                    results[i] = PostResult(o.order_key, f"{name}#{item.position}", sent=self._sent(name, item))
        return [results[i] for i in range(len(orders))]

    def _refusal(self, outgoing: OutgoingOrder) -> PostResult | None:
        item = layouts.Item(outgoing.order_key, 1, outgoing.resolved)
        try:
            layouts.check_encodable(layouts.item_text(item, self.template, self.layout), self.template.encoding)
        except layouts.Unencodable as exc:
            return PostResult(
                outgoing.order_key,
                None,
                DestinationRejected(
                    f"{SYSTEM}: order {outgoing.resolved.order.number} has {exc.value!r}, which the file's encoding "
                    f"{exc.encoding} cannot hold; it was not written",
                    hint="Use an encoding that holds it (utf-8) in the connection's template, or correct the order.",
                ),
            )
        return None

    def _render(self, items: Sequence[layouts.Item]) -> bytes:
        if self.layout == "xml":
            return layouts.render_xml(items, self.template, generated=self._now())
        return layouts.render_csv(items, self.template).encode(self.template.encoding)

    def _sent(self, name: str, item: layouts.Item) -> dict[str, Any]:
        if self.layout == "xml":
            return {
                "file": name,
                "position": item.position,
                "layout": "xml",
                "xml": layouts.order_xml(item, self.template),
            }
        headers = [h for _, h in self.template.columns]
        rows = [dict(zip(headers, layouts.csv_cells(r, self.template), strict=True)) for r in layouts.rows_of(item)]
        return {"file": name, "position": item.position, "layout": "csv", "rows": rows}

    def _name(self, group: Sequence[OutgoingOrder], used: set[str]) -> str:
        """The file's name from the pattern; one already used (in ``used``: the manifest's, or in the
        directory, or by a sidecar) gets ``-2``, ``-3`` … before its extension (decision 183)."""
        now = self._now().astimezone(UTC)
        digest = hashlib.sha256("\n".join(o.idempotency_key for o in group).encode()).hexdigest()[:12]
        first = group[0]
        base = self.pattern.format(
            batch=digest,
            date=now.strftime("%Y%m%d"),
            time=now.strftime("%H%M%S"),
            number=safe_part(first.resolved.order.number),
            order_key=safe_part(first.order_key),
            ext=self.layout,
        )
        base = safe_part(base)
        stem, dot, ext = base.rpartition(".")
        if not dot:
            stem, ext = base, ""
        name, n = base, 1
        while name in used or (self.drop.path / name).exists() or self._sidecars_exist(name):
            n += 1
            name = f"{stem}-{n}.{ext}" if ext else f"{stem}-{n}"
        return name

    # --- watching ------------------------------------------------------------------------------
    def watch_deliveries(self) -> list[Delivery]:
        with self._fs("watch"):
            if not self.drop.path.is_dir():  # an unmounted share is no proof that anything was taken
                raise FileNotFoundError(errno.ENOENT, "no such directory", str(self.drop.path))
            return self._fates(self.drop.read_manifest())

    def _fates(self, manifest: Manifest) -> list[Delivery]:
        out = []
        for w in manifest.files.values():
            if not w.written:
                continue
            fate, message = self._settled_fate(w)
            if fate is not DeliveryFate.WAITING and w.at < self._now() - self.watch_for:
                continue  # settled long ago: the hub has recorded it
            out.append(Delivery(w.file, w.at, w.at + self.pickup_limit, w.keys, fate, message))
        return out

    def _settled_fate(self, w: Written) -> tuple[DeliveryFate, str]:
        """The file's fate; a refusal, once seen, is kept in the manifest and stays one (a package
        that deletes its error files must not turn a refused file into an imported one)."""
        if w.rejected is not None:
            return DeliveryFate.REJECTED, w.rejected
        fate, message = self._fate(w.file)
        if fate is DeliveryFate.REJECTED:
            self.drop.record_rejected(w.file, message)
            w.rejected = message
        return fate, message

    def _sidecar(self, pattern: str, name: str) -> Path | None:
        return self.drop.path / safe_sidecar(pattern, name) if pattern else None

    def _sidecars_exist(self, name: str) -> bool:
        return any(
            p is not None and p.exists()
            for p in (self._sidecar(self.ack_pattern, name), self._sidecar(self.error_pattern, name))
        )

    def _fate(self, name: str) -> tuple[DeliveryFate, str]:
        base = self.drop.path
        error_file = self._sidecar(self.error_pattern, name)
        candidates = [error_file] if error_file is not None else []
        if self.error_dir:
            candidates += [base / self.error_dir / name, base / self.error_dir / safe_sidecar(self.error_pattern, name)]
        for path in candidates:
            if path is not None and path.exists():
                return DeliveryFate.REJECTED, self._message(path, name)
        ack = self._sidecar(self.ack_pattern, name)
        if ack is not None and ack.exists():
            return DeliveryFate.IMPORTED, f"acknowledged ({ack.name})"
        if self.processed_dir and (base / self.processed_dir / name).exists():
            return DeliveryFate.IMPORTED, f"moved to {self.processed_dir}/"
        if not (base / name).exists():
            return DeliveryFate.IMPORTED, "picked up (no longer in the drop directory)"
        return DeliveryFate.WAITING, ""

    def _message(self, path: Path, name: str) -> str:
        if path.name == name:
            return f"moved to {self.error_dir}/ with no message"
        with open(path, "rb") as fh:
            raw = fh.read(MESSAGE_BYTES)
        text = raw.decode("utf-8", errors="replace").strip()
        return text or f"{path.name} is empty"

    # -------------------------------------------------------------------------------------------
    @contextmanager
    def _fs(self, what: str) -> Iterator[None]:
        try:
            yield
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise SettingsError(
                f"{SYSTEM}: the drop directory {self.drop.path} is not there ({what}: {exc.strerror})",
                hint="Create it, or set the connection's directory setting to the folder the package imports from.",
                fix=_fix("directory", "Set the drop directory the package imports from."),
            ) from exc
        except OSError as exc:
            raise RemoteUnavailable(f"{SYSTEM}: {what} in {self.drop.path} failed: {exc}") from exc


def safe_sidecar(pattern: str, name: str) -> str:
    """The name of a file beside ``name`` made from ``pattern`` (``{name}.ok``, ``{stem}.err``)."""
    stem = name.rsplit(".", 1)[0]
    return pattern.replace("{name}", name).replace("{stem}", stem)
