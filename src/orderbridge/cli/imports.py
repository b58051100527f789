"""``orderbridge orders import FILE`` and ``orderbridge orders import-template``: orders from a CSV file.

The file is previewed first (every row read and validated, each order judged against the ledger,
nothing written), the preview printed, then — after a yes, or with ``--yes`` — imported with a
progress bar over the file's bytes, and the per-row report printed (and written with ``--report``,
every formula-looking cell neutralised). The file is read twice more while importing (see
``services/order_imports.py``); its SHA-256 is checked each time, so a file changed after its
preview is refused rather than imported unseen.

Exit codes: 0 every order imported or skipped as a duplicate; 1 some orders rejected (the others
imported); 2 a typed error (the file could not be read: nothing imported); 3 not confirmed.
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from orderbridge.cli.common import JsonOpt, console, err, errors, print_json, run
from orderbridge.cli.render import cells, line, plain

EXIT_REJECTED = 1
EXIT_DECLINED = 3


def _choices(encoding: str, delimiter: str) -> Any:
    from orderbridge.domain.csv_import import parse_delimiter, parse_encoding
    from orderbridge.errors import InvalidInput
    from orderbridge.services.order_imports import Choices

    try:
        return Choices(parse_encoding(encoding), parse_delimiter(delimiter))
    except ValueError as exc:
        raise InvalidInput(str(exc), hint="See orderbridge orders import --help.") from exc


def _bar(total: int) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[rows]:,} rows"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


def _print_preview(preview: Any, show: int) -> None:
    f = preview.file
    console.print(
        line(
            ("file ", "bold"),
            f.filename,
            f": {f.rows:,} rows, encoding {f.encoding}",
            " (detected)" if f.encoding_detected else " (chosen)",
            f", separator {'comma' if f.delimiter == ',' else 'semicolon'}",
            " (detected)" if f.delimiter_detected else " (chosen)",
        )
    )
    for w in f.warnings:
        console.print(line(("warning: ", "yellow"), w.message))
    counts = preview.counts
    console.print(
        line(
            ("orders: ", "bold"),
            f"{counts['orders']:,} — {counts['new']:,} new, {counts['updated']:,} changed (updates), "
            f"{counts['unchanged']:,} already imported (skipped), {counts['rejected']:,} rejected; "
            f"{counts['held']:,} will be held",
        )
    )
    table = Table("rows", "order", "lines", "total", "what will happen")
    shown = sorted(preview.orders, key=lambda o: (o.outcome != "rejected", o.state != "held", o.first_row))[:show]
    for o in shown:
        rows = f"{o.rows[0]}" if len(o.rows) == 1 else f"{o.rows[0]}–{o.rows[-1]}"
        style = "red" if o.outcome == "rejected" else ("yellow" if o.state == "held" else "")
        table.add_row(*cells((rows, o.number, str(o.lines), o.total)), plain(o.describe(), style))
    console.print(table)
    if len(preview.orders) > show:
        console.print(f"… and {len(preview.orders) - show:,} more orders (--show N to list more).")
    errors_ = preview.errors
    if errors_:
        table = Table("row", "column", "value", "what is wrong", "how to fix", title="rows rejected")
        for e in errors_[:show]:
            table.add_row(*cells((str(e.row), e.column or "(row)", e.value, e.problem, e.fix)))
        console.print(table)
        if len(errors_) > show:
            console.print(f"… and {len(errors_) - show:,} more errors.")


def _write_report(report: Any, path: Path) -> None:
    from orderbridge.services.order_imports import report_csv

    with open(path, "w", encoding="utf-8", newline="") as out:
        for chunk in report_csv(report):
            out.write(chunk)


def orders_import(
    file: Annotated[Path, typer.Argument(help="The CSV file: one row per line item (see import-template)")],
    encoding: Annotated[str, typer.Option(help="auto | utf-8 | windows-1252")] = "auto",
    delimiter: Annotated[str, typer.Option(help="auto | comma | semicolon")] = "auto",
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Import without asking, after the preview")] = False,
    report: Annotated[Path | None, typer.Option(help="Write the per-row report to this CSV file")] = None,
    show: Annotated[int, typer.Option(min=1, help="Orders and errors listed in the preview")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Import orders from a CSV file: a preview first (nothing written), then the import and its report."""
    from orderbridge.services.order_imports import Preview, Report, confirm, file_digest, path_opener, plan
    from orderbridge.services.principals import Actor

    path = str(file)
    with errors():
        if not file.is_file():
            from orderbridge.errors import InvalidInput

            raise InvalidInput(f"{path}: no such file", hint="Give the path of the CSV file to import.")
        choices = _choices(encoding, delimiter)
    size = os.path.getsize(path)

    def work(scope: Any) -> tuple[Preview, Report | None]:
        digest = file_digest(path)
        with _bar(size) as bar:
            task = bar.add_task("reading", total=size, rows=0)
            with path_opener(path, digest)() as handle:
                preview = plan(
                    scope,
                    handle,
                    filename=file.name,
                    choices=choices,
                    progress=lambda rows, done: bar.update(task, completed=done, rows=rows),
                )
        if not as_json:
            _print_preview(preview, show)
        importable = preview.counts["new"] + preview.counts["updated"]
        if importable == 0:
            if not as_json:
                console.print("Nothing to import: every order is rejected or already imported.")
            return preview, None
        if not yes:
            if as_json or not sys.stdin.isatty():
                if not as_json:
                    console.print("Not imported: run again with --yes to import (nothing was written).")
                return preview, None
            if not typer.confirm(f"Import {importable:,} orders?", default=False):
                return preview, None
        with _bar(size) as bar:
            task = bar.add_task("importing", total=size, rows=0)
            # each pass reports its own progress; the bar shows the writing pass (the second)
            done = confirm(
                Actor.cli(scope),
                path_opener(path, digest),
                filename=file.name,
                choices=choices,
                progress=lambda rows, read: bar.update(task, completed=read, rows=rows),
            )
        return preview, done

    preview, done = run(work)
    if report is not None and done is not None:
        _write_report(done, report)
    if as_json:
        print_json({"preview": preview.as_dict(), "report": done.as_dict() if done is not None else None})
    elif done is not None:
        c = done.counts
        console.print(
            line(
                ("imported: ", "bold green"),
                f"{c['imported']:,} new orders, {c['updated']:,} updated, {c['skipped']:,} skipped as duplicates, "
                f"{c['rejected']:,} rejected",
            )
        )
        if report is not None:
            console.print(line("report written to ", str(report)))
        else:
            table = Table("row", "order", "sku", "outcome", "message")
            for r in [r for r in done.rows if r.outcome == "rejected"][:show]:
                table.add_row(*cells((str(r.row), r.order_number, r.sku, r.outcome, r.message)))
            if table.row_count:
                console.print(table)
    if done is None:
        raise typer.Exit(
            EXIT_DECLINED
            if preview.counts["new"] + preview.counts["updated"]
            else (EXIT_REJECTED if preview.counts["rejected"] else 0)
        )
    if done.counts["rejected"]:
        raise typer.Exit(EXIT_REJECTED)


def orders_import_template(
    example: Annotated[bool, typer.Option(help="With the documented example's rows")] = False,
    output: Annotated[Path | None, typer.Option(help="Write it to this file (default: standard output)")] = None,
) -> None:
    """The import file's template: every documented column, and optionally the documented example."""
    from orderbridge.domain.csv_import.spec import template_rows

    rows = template_rows(example=example)
    if output is None:
        csv.writer(sys.stdout, lineterminator="\r\n").writerows(rows)
        return
    with open(output, "w", encoding="utf-8", newline="") as out:
        csv.writer(out, lineterminator="\r\n").writerows(rows)
    console.print(line("template written to ", str(output)))
