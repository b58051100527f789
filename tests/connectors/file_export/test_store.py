"""The drop directory's atomic write and manifest: a process SIGKILLed at each step of a write
(``orderbridge.seams`` crash points), then run again, leaves no partial file, no order twice and
none missing — proven by reading the drop directory itself."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from orderbridge.connectors.file_export import store
from orderbridge.errors import RemoteUnavailable
from tests.connectors.contract_destination import make_order, outgoing
from tests.connectors.file_export.env import build, delivered, read_csv

ROOT = Path(__file__).resolve().parents[3]

CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from tests.connectors.contract_destination import make_order, outgoing
    from tests.connectors.file_export.env import build
    per = sys.argv[2]
    connector = build(Path(sys.argv[1]), per=per)
    connector.post_orders([outgoing(make_order(n)) for n in range(1, 6)])
    print("finished")
    """
)


def _child(drop: Path, per: str, crash_at: str | None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    env.pop("ORDERBRIDGE_CRASH_AT", None)
    if crash_at:
        env["ORDERBRIDGE_CRASH_AT"] = crash_at
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(drop), per], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def _orders_in(drop: Path) -> Counter[str]:
    """Each order key, counted once per (file, position) that carries it: a duplicate counts 2."""
    seen: set[tuple[str, str, str]] = set()
    for path in delivered(drop):
        rows = read_csv(path)
        assert rows, f"{path.name} is empty"
        for row in rows:
            seen.add((path.name, row["document_id"], row["order_key"]))
    return Counter(key for _f, _p, key in seen)


@pytest.mark.parametrize(
    ("per", "crash_at"),
    [
        ("batch", "export.mid_write:1"),
        ("batch", "export.before_intent:1"),
        ("batch", "export.before_rename:1"),
        ("batch", "export.before_record:1"),
        ("order", "export.mid_write:3"),
        ("order", "export.before_rename:2"),
        ("order", "export.before_record:4"),
    ],
)
def test_a_write_killed_at_any_step_then_run_again_leaves_every_order_once_and_no_partial_file(
    tmp_path: Path, per: str, crash_at: str
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    killed = _child(drop, per, crash_at)
    assert killed.returncode == -9, killed.stderr[-2000:]  # SIGKILL, at the seam
    # what the package could see right after the kill: only complete files
    for path in delivered(drop):
        lines = read_csv(path)
        assert all(row["currency"] == "USD" for row in lines)
    again = _child(drop, per, None)
    assert again.returncode == 0 and "finished" in again.stdout, again.stderr[-2000:]
    counts = _orders_in(drop)
    assert counts == Counter({f"ob-{n}": 1 for n in range(1, 6)})
    assert not list(drop.glob(".*.tmp")), "no temporary file is left behind"
    # and a third run writes nothing new
    names = [p.name for p in delivered(drop)]
    assert _child(drop, per, None).returncode == 0
    assert [p.name for p in delivered(drop)] == names


def test_a_file_taken_by_the_package_before_the_record_is_not_written_again(tmp_path: Path) -> None:
    """Killed after the rename, before the manifest's "written" line; the package has already
    deleted the file by the time the hub runs again: the intent without its temporary file means
    it was delivered."""
    drop = tmp_path / "drop"
    drop.mkdir()
    assert _child(drop, "batch", "export.before_record:1").returncode == -9
    (first,) = delivered(drop)
    first.unlink()  # the package took it
    assert _child(drop, "batch", None).returncode == 0
    assert delivered(drop) == []
    manifest = store.DropDirectory(drop).read_manifest()
    assert [w.file for w in manifest.files.values()] == [first.name] and manifest.files[first.name].written


def test_a_write_failing_mid_way_leaves_nothing_and_is_retried_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    connector = build(drop)
    batch = [outgoing(make_order(n)) for n in (1, 2)]
    real_fsync = os.fsync
    calls = {"n": 0}

    def full_disk(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(store.os, "fsync", full_disk)
    with pytest.raises(RemoteUnavailable) as failed:
        connector.post_orders(batch)
    assert "No space left" in str(failed.value)
    assert delivered(drop) == []
    results = connector.post_orders(batch)
    assert all(r.ok for r in results)
    assert _orders_in(drop) == Counter({"ob-1": 1, "ob-2": 1})
    assert not list(drop.glob(".*.tmp"))


def test_a_torn_manifest_line_is_a_step_that_did_not_happen(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    connector = build(drop)
    (first,) = connector.post_orders([outgoing(make_order(1))])
    manifest = drop / store.STATE_DIR / store.MANIFEST
    with open(manifest, "a", encoding="utf-8") as fh:
        fh.write('{"op":"intent","file":"torn.csv","ke')
    (again,) = connector.post_orders([outgoing(make_order(1))])
    assert again.document_id == first.document_id
    assert [p.name for p in delivered(drop)] == [first.document_id.split("#")[0]]
