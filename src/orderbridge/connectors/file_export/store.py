"""The drop directory: files written atomically, and the manifest that says what went where.

Why by hand: an atomic, durable file write is four system calls in a precise order that no stdlib
function makes (``tempfile`` + ``os.replace`` is not durable without the two ``fsync`` s), and the
manifest is the settlement of a crash, which only this module can order with the writes.

**A file** is written as ``.<name>.tmp`` in the drop directory itself (same filesystem, so the
rename is atomic): created, written, flushed and ``fsync`` ed, then renamed to its final name and
the directory ``fsync`` ed. A package that imports ``*.csv`` never sees a partial file: the
temporary name starts with a dot and ends in ``.tmp``.

**The manifest** is ``.orderbridge/manifest.jsonl`` inside the drop directory (decision 181): one
JSON object a line, each line ``fsync`` ed before the next step —

1. the temporary file is complete and durable;
2. ``{"op": "intent", "file", "keys", "at"}`` — the file's deterministic final name and the
   idempotency keys it carries, by position;
3. the rename (and the directory's ``fsync``);
4. ``{"op": "written", "file"}``.

A process killed anywhere is settled by the next one from the directory alone
(:meth:`DropDirectory.settle`): a temporary file without an intent is deleted (its orders were
never delivered and are written again); an intent whose temporary file is still there is
completed by renaming it (its content is complete and durable); an intent without its temporary
file was renamed — the file was delivered (it may already be picked up), so it is recorded as
written and never written again. A torn last manifest line (killed mid-append) is ignored: its
step did not happen.

A fifth kind of line, ``{"op": "rejected", "file", "message"}``, remembers a refusal the watcher
saw, so that it stays one when the package deletes its error file afterwards.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from orderbridge.seams import crashpoint

STATE_DIR = ".orderbridge"
MANIFEST = "manifest.jsonl"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_part(text: str) -> str:
    """A file-name part from outside text (an order number ``#1001/B`` → ``1001_B``): letters,
    digits, ``.``, ``_`` and ``-`` only, never a leading dot, at most 80 characters."""
    cleaned = _SAFE.sub("_", text).strip("._") or "x"
    return cleaned[:80]


def temp_name(name: str) -> str:
    return f".{name}.tmp"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class Written:
    """One file the manifest knows: its name, when it was recorded, its keys by position."""

    file: str
    at: datetime
    keys: tuple[str, ...]
    written: bool = False
    #: the package's message, once a refusal was seen (kept: a package may delete its error file later)
    rejected: str | None = None


@dataclass
class Manifest:
    files: dict[str, Written] = field(default_factory=dict)

    def position_of(self) -> dict[str, tuple[str, int]]:
        """idempotency key → (file, 1-based position), over files written (the latest wins)."""
        out: dict[str, tuple[str, int]] = {}
        for w in self.files.values():
            if w.written:
                for i, key in enumerate(w.keys, start=1):
                    out[key] = (w.file, i)
        return out


class DropDirectory:
    """The drop directory and its manifest. One writer at a time (the hub's post lease)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.state = path / STATE_DIR
        self.manifest_path = self.state / MANIFEST

    # --- the manifest ------------------------------------------------------------------------------
    def read_manifest(self) -> Manifest:
        manifest = Manifest()
        try:
            text = self.manifest_path.read_text("utf-8")
        except FileNotFoundError:
            return manifest
        for line in text.split("\n"):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a torn last line: that step never completed
            name = str(entry.get("file", ""))
            op = entry.get("op")
            if op == "intent":
                manifest.files[name] = Written(
                    name, datetime.fromisoformat(entry["at"]), tuple(str(k) for k in entry["keys"])
                )
            elif name in manifest.files and op == "written":
                manifest.files[name].written = True
            elif name in manifest.files and op == "rejected":
                manifest.files[name].rejected = str(entry.get("message", ""))
        return manifest

    def _append(self, entry: dict[str, object]) -> None:
        self.state.mkdir(exist_ok=True)
        line = json.dumps(entry, ensure_ascii=True, separators=(",", ":")) + "\n"
        with open(self.manifest_path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def record_rejected(self, name: str, message: str) -> None:
        """Remember that the package refused ``name`` (and why): the refusal stays a refusal even
        when the package later deletes its error file, or the file itself."""
        self._append({"op": "rejected", "file": name, "message": message})

    # --- settling a crash --------------------------------------------------------------------------
    def settle(self) -> Manifest:
        """Finish or undo what a killed writer left (see the module's docstring); the manifest after."""
        manifest = self.read_manifest()
        pending = {w.file: w for w in manifest.files.values() if not w.written}
        for name in pending:
            temp = self.path / temp_name(name)
            if temp.exists():
                os.replace(temp, self.path / name)
                fsync_dir(self.path)
            self._append({"op": "written", "file": name})
            manifest.files[name].written = True
        for entry in self.path.glob(".*.tmp"):
            final = entry.name[1:-4]
            if final not in manifest.files:
                entry.unlink()  # never announced: its orders are written again
        return manifest

    # --- writing -----------------------------------------------------------------------------------
    def write(self, name: str, data: bytes, keys: Sequence[str], at: datetime) -> None:
        """Deliver ``data`` as ``name`` carrying ``keys`` (by position), atomically and durably."""
        temp = self.path / temp_name(name)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            try:
                half = len(data) // 2
                os.write(fd, data[:half])
                crashpoint("export.mid_write")  # a kill here leaves a partial temporary file, never a final one
                view = memoryview(data)[half:]
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            temp.unlink(missing_ok=True)  # not announced yet: nothing of it was delivered
            raise
        crashpoint("export.before_intent")
        self._append({"op": "intent", "file": name, "keys": list(keys), "at": at.isoformat()})
        crashpoint("export.before_rename")
        os.replace(temp, self.path / name)
        fsync_dir(self.path)
        crashpoint("export.before_record")
        self._append({"op": "written", "file": name})
