"""The CSV import reader: every bad file gets its typed error and fix; every good one reads exactly."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from babel import Locale
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orderbridge.domain.csv_import import (
    CsvOrders,
    Delimiter,
    DuplicateColumn,
    EmptyFile,
    Encoding,
    FileTooLarge,
    ImportOrder,
    MalformedCsv,
    MissingColumns,
    NotCsv,
    WrongEncoding,
    neutralise,
    parse_delimiter,
    parse_encoding,
)
from orderbridge.domain.csv_import.countries import ALPHA_2
from orderbridge.domain.csv_import.spec import MAX_LINE_BYTES

HEADER = "order_number,currency,sku,quantity,unit_price,title,ship_country,placed_at\n"


def read(data: bytes | str, **options: object) -> tuple[CsvOrders, list[ImportOrder]]:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    reader = CsvOrders(io.BytesIO(raw), **options)  # type: ignore[arg-type]
    return reader, list(reader)


def errors_of(order: ImportOrder) -> list[tuple[int, str, str, str]]:
    return [(e.row, e.column, e.value, e.code) for e in order.errors]


# --- good files ---------------------------------------------------------------------------------


def test_rows_are_grouped_into_orders_by_number_with_typed_values() -> None:
    _, orders = read(
        HEADER
        + "W-1,eur,MUG,2,12.50,Red mug,fr,2026-11-30T14:05:00+01:00\n"
        + "W-1,,PLATE,1,3,,,\n"
        + "W-2,USD,CUP,10,0.99,,US,2026-11-30\n"
    )
    assert [o.number for o in orders] == ["W-1", "W-2"]
    first = orders[0]
    assert first.rows == (2, 3) and not first.rejected
    assert [(ln.sku, ln.title, ln.quantity, ln.unit_price) for ln in first.lines] == [
        ("MUG", "Red mug", 2, Decimal("12.50")),
        ("PLATE", "PLATE", 1, Decimal("3")),
    ]
    assert first.fields["currency"] == "EUR"
    assert first.fields["ship_country"] == "FR"
    assert first.fields["placed_at"] == datetime(2026, 11, 30, 13, 5, tzinfo=UTC)
    assert orders[1].fields["placed_at"] == datetime(2026, 11, 30, tzinfo=UTC)


def test_utf8_with_a_byte_order_mark_reads_its_first_column() -> None:
    reader, orders = read(b"\xef\xbb\xbf" + (HEADER + "Caf\u00e9-1,EUR,S,1,1,Caf\u00e9,,\n").encode())
    assert reader.encoding is Encoding.UTF8
    assert orders[0].number == "Café-1" and orders[0].lines[0].title == "Café"


def test_windows_1252_is_detected_from_its_bytes() -> None:
    reader, orders = read((HEADER + "1,EUR,S,1,1,Caf\u00e9 cr\u00e8me \u20ac,,\n").encode("cp1252"))
    assert reader.encoding is Encoding.WINDOWS_1252 and reader.detected_encoding
    assert orders[0].lines[0].title == "Café crème €"


def test_semicolon_separator_is_detected_and_reads_the_decimal_comma() -> None:
    reader, orders = read("order_number;currency;sku;quantity;unit_price\n1;EUR;S;2;12,50\n")
    assert reader.delimiter is Delimiter.SEMICOLON
    assert orders[0].lines[0].unit_price == Decimal("12.50")


def test_a_chosen_separator_wins_over_detection() -> None:
    # a header with more commas than semicolons inside its quoted names, read as semicolon-separated
    reader, orders = read(
        'order_number;currency;sku;quantity;unit_price;"custom.a,b,c"\n1;EUR;S;1;1;x\n', delimiter=Delimiter.SEMICOLON
    )
    assert reader.delimiter is Delimiter.SEMICOLON
    assert orders[0].custom == (("a,b,c", "x"),)


def test_excel_quoting_keeps_separators_quotes_and_line_breaks_inside_a_value() -> None:
    _, orders = read(HEADER + '1,EUR,S,1,1,"Mug, ""big""\nsecond line",,\n2,EUR,T,1,1,,,\n')
    assert orders[0].lines[0].title == 'Mug, "big"\nsecond line'
    assert orders[1].rows == (3,)  # a spreadsheet's row numbers: a quoted line break is one row


def test_order_level_values_given_on_the_first_row_only_apply_to_the_whole_order() -> None:
    _, orders = read(
        "order_number,currency,sku,quantity,unit_price,customer_email\n1,EUR,A,1,1,a@example.com\n1,,B,1,1,\n"
    )
    assert not orders[0].rejected and orders[0].fields["customer_email"] == "a@example.com"


def test_custom_columns_become_custom_fields() -> None:
    _, orders = read("order_number,currency,sku,quantity,unit_price,custom.PO Number\n1,EUR,A,1,1,PO-77\n")
    assert orders[0].custom == (("PO Number", "PO-77"),)


def test_blank_rows_are_skipped_and_counted() -> None:
    reader, orders = read(HEADER + ",,,,,,,\n1,EUR,S,1,1,,,\n\n")
    assert len(orders) == 1
    assert reader.blank_rows == 2
    assert any(w.code == "rows_blank" and w.message == "2 blank rows skipped." for w in reader.warnings)


def test_encoding_and_separator_choices_have_their_usual_names() -> None:
    assert parse_encoding("auto") is None and parse_encoding("UTF8") is Encoding.UTF8
    assert parse_encoding("cp1252") is Encoding.WINDOWS_1252
    assert parse_delimiter("semicolon") is Delimiter.SEMICOLON and parse_delimiter(",") is Delimiter.COMMA
    with pytest.raises(ValueError, match="choose auto, utf-8 or windows-1252"):
        parse_encoding("ebcdic")


# --- bad files: each a typed error with the fix -------------------------------------------------


def test_an_empty_file_is_refused_as_empty() -> None:
    for data in (b"", b"\n\n", b"\xef\xbb\xbf", b"   \r\n"):
        with pytest.raises(EmptyFile) as caught:
            read(data)
        assert caught.value.code == "import_file_empty"
        assert (
            str(caught.value) == "The file is empty. — Export the orders with a header row and one row per line item."
        )


def test_a_header_without_rows_is_refused_as_empty() -> None:
    with pytest.raises(EmptyFile, match="The file has a header but no rows"):
        read(HEADER)


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"PK\x03\x04\x14\x00\x06\x00", "an Excel workbook (.xlsx) or another zip archive"),
        (b"%PDF-1.7\n", "a PDF document"),
        (b"\xff\xfeo\x00r\x00", "UTF-16 text"),
        (b"\x00\x01\x02garbage\x00" * 20, "binary data"),
    ],
)
def test_a_file_that_is_not_csv_says_what_it_is(data: bytes, what: str) -> None:
    with pytest.raises(NotCsv) as caught:
        read(data)
    assert what in caught.value.message
    assert caught.value.hint == 'Save it from the spreadsheet as "CSV UTF-8 (comma delimited)" and import that file.'


def test_undecodable_utf8_names_the_row_and_byte_and_suggests_windows_1252() -> None:
    body = (HEADER + "1,EUR,S,1,1,plain,,\n").encode() + "2,EUR,S,1,1,Caf\u00e9,,\n".encode("cp1252")
    with pytest.raises(WrongEncoding) as caught:
        read(body, encoding=Encoding.UTF8)
    error = caught.value
    offset = body.index(b"\xe9")
    assert error.row == 3 and error.offset == offset and error.suggested == "windows-1252"
    assert (
        error.message
        == f"Row 3 cannot be read as utf-8 (the encoding chosen): byte 0xE9 at offset {offset} of the file."
    )
    assert error.hint == "The file is probably windows-1252: choose the encoding windows-1252 and import it again."


def test_a_late_windows_1252_row_in_a_file_detected_as_utf8_is_named() -> None:
    filler = "".join(f"{i},EUR,S,1,1,Caf\u00e9,,\n" for i in range(3000))  # past the detection window
    body = (HEADER + filler).encode() + "x,EUR,S,1,1,na\u00efve,,\n".encode("cp1252")
    reader = CsvOrders(io.BytesIO(body))
    assert reader.encoding is Encoding.UTF8
    with pytest.raises(WrongEncoding, match=r"Row 3002 cannot be read as utf-8 \(the encoding detected\)"):
        list(reader)


def test_bytes_windows_1252_cannot_read_suggest_utf8_when_they_are_utf8() -> None:
    body = (HEADER + "1,EUR,S,1,1,\u201dok\u201d \u0081,,\n").encode("utf-8")  # U+0081 is 0xC2 0x81 in UTF-8
    with pytest.raises(WrongEncoding) as caught:
        read(body, encoding=Encoding.WINDOWS_1252)
    assert caught.value.suggested == "utf-8"
    assert caught.value.hint == "The file is probably utf-8: choose the encoding utf-8 and import it again."


def test_choosing_windows_1252_for_a_utf8_file_warns_of_mangled_letters() -> None:
    reader, _ = read((HEADER + "1,EUR,S,1,1,Caf\u00e9,,\n").encode(), encoding=Encoding.WINDOWS_1252)
    assert [w.code for w in reader.warnings] == ["encoding_looks_utf8"]


def test_missing_required_columns_are_named() -> None:
    with pytest.raises(MissingColumns) as caught:
        read("order_number,sku,title\n1,S,x\n")
    assert caught.value.missing == ("currency", "quantity", "unit_price")
    assert caught.value.message == "Required columns missing: currency, quantity, unit_price."
    assert caught.value.hint == "Add the missing columns (see the template), then import the file again."


def test_a_tab_separated_file_is_told_to_be_saved_as_csv() -> None:
    with pytest.raises(MissingColumns) as caught:
        read("order_number\tcurrency\tsku\tquantity\tunit_price\n1\tEUR\tS\t1\t1\n")
    assert caught.value.hint.startswith("The file seems to be tab-separated")


def test_a_column_twice_is_refused_naming_both_positions() -> None:
    with pytest.raises(DuplicateColumn, match=r"The column sku appears twice in the header \(columns 3 and 6\)"):
        read("order_number,currency,sku,quantity,unit_price,SKU\n1,EUR,S,1,1,S\n")


def test_unknown_columns_are_warned_about_and_ignored() -> None:
    reader, orders = read("order_number,currency,sku,quantity,unit_price,Colour\n1,EUR,S,1,1,red\n")
    assert reader.unknown == ["Colour"]
    assert reader.warnings[0].message == "The column 'Colour' is not one the import reads: it is ignored."
    assert not orders[0].rejected


def test_a_row_with_too_many_fields_rejects_its_order_only() -> None:
    _, orders = read(HEADER + "1,EUR,S,1,1,Mug, big,FR,2026-11-30\n2,EUR,S,1,1,ok,,\n")
    assert errors_of(orders[0]) == [(2, "", "2026-11-30", "row_too_many_fields")]
    assert orders[0].errors[0].problem == "has 9 fields; the header has 8"
    assert orders[0].errors[0].fix.startswith("A value holds the separator (comma): put that value in double quotes")
    assert not orders[1].rejected


def test_a_file_over_the_limit_is_refused_naming_the_limit() -> None:
    body = (HEADER + "1,EUR,S,1,1,x,,\n" * 2000).encode()
    with pytest.raises(FileTooLarge) as caught:
        read(body, max_bytes=20_000)
    assert caught.value.limit == 20_000
    assert caught.value.message == "The file is larger than the import limit of 20,000 bytes (20,000 bytes)."


def test_the_documented_limit_is_named_in_mebibytes() -> None:
    from orderbridge.domain.csv_import.spec import MAX_FILE_BYTES, describe_bytes

    assert describe_bytes(MAX_FILE_BYTES) == "32 MiB"


def test_an_unclosed_quote_is_named_by_its_row() -> None:
    body = HEADER + '1,EUR,S,1,1,"never closed\n' + ("x" * 1000 + "\n") * 200
    with pytest.raises(MalformedCsv) as caught:
        read(body)
    assert caught.value.message == "Row 2 has a cell longer than 131,072 characters."
    assert "a double quote opens a value on row 2 and never closes" in caught.value.hint


def test_a_line_over_the_line_limit_is_refused() -> None:
    body = HEADER + "1,EUR,S,1,1," + "x" * (MAX_LINE_BYTES + 10) + ",,\n"
    with pytest.raises(MalformedCsv, match="Row 2 is longer than 1 MiB"):
        read(body)


# --- bad rows: row, column, value, what is wrong, how to fix -------------------------------------


@pytest.mark.parametrize(
    ("column", "value", "code", "fix"),
    [
        ("quantity", "2.5", "quantity_invalid", "Write the quantity as a whole number from 1 to 1,000,000, e.g. 2."),
        ("quantity", "0", "quantity_invalid", "A line ships at least one unit: write 1 or more, or remove the row."),
        (
            "unit_price",
            "$12.50",
            "amount_invalid",
            "Write the amount without a symbol (12.50); the currency goes in the currency column.",
        ),
        (
            "unit_price",
            "1,000",
            "amount_ambiguous",
            "Write the amount with a period as the decimal mark and no thousands separator (1000 or 1.000).",
        ),
        (
            "unit_price",
            "-3",
            "amount_negative",
            "Write the amount as a positive number (a discount goes in the discount column).",
        ),
        ("unit_price", "0.1234567", "amount_too_precise", "Round the amount to at most 6 decimal places."),
        ("currency", "EURO", "currency_invalid", "Write the three-letter code, e.g. EUR, USD, GBP."),
        ("ship_country", "UK", "country_invalid", "Write the two-letter code: GB."),
        (
            "placed_at",
            "11/30/2026",
            "date_invalid",
            "Write the date as YYYY-MM-DD (2026-11-30) or with a time, 2026-11-30T14:05:00+01:00.",
        ),
        ("sku", "", "value_missing", "Fill in sku: it is required on every row."),
    ],
)
def test_a_bad_cell_is_a_row_error_naming_row_column_value_and_fix(
    column: str, value: str, code: str, fix: str
) -> None:
    cells = {
        "order_number": "1",
        "currency": "EUR",
        "sku": "S",
        "quantity": "1",
        "unit_price": "1",
        "title": "",
        "ship_country": "",
        "placed_at": "",
    }
    cells[column] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(
        [list(cells), list(cells.values()), ["2", "EUR", "S", "1", "1", "", "", ""]]
    )
    _, orders = read(out.getvalue())
    assert [(e.row, e.column, e.value, e.code, e.fix) for e in orders[0].errors] == [(2, column, value, code, fix)]
    assert not orders[1].rejected


def test_an_order_with_one_bad_row_is_rejected_whole_and_the_next_goes_on() -> None:
    _, orders = read(HEADER + "1,EUR,A,1,1,,,\n1,EUR,B,x,1,,,\n1,EUR,C,1,1,,,\n2,EUR,D,1,1,,,\n")
    assert orders[0].rejected and errors_of(orders[0]) == [(3, "quantity", "x", "quantity_invalid")]
    assert not orders[1].rejected


def test_an_order_value_that_differs_between_rows_is_a_conflict() -> None:
    _, orders = read(HEADER + "1,EUR,A,1,1,,FR,\n1,USD,B,1,1,,,\n")
    error = orders[0].errors[0]
    assert (error.row, error.column, error.value, error.code) == (3, "currency", "USD", "order_value_conflict")
    assert error.problem == "differs from row 2's value 'EUR' for the same order"


def test_an_order_whose_rows_are_apart_is_flagged_where_it_reappears() -> None:
    _, orders = read(HEADER + "1,EUR,A,1,1,,,\n2,EUR,B,1,1,,,\n1,EUR,C,1,1,,,\n")
    assert [(o.number, o.apart) for o in orders] == [("1", False), ("2", False), ("1", True)]
    assert orders[2].errors[0].problem == "appeared before, at row 2: the rows of one order must be together"


def test_a_row_without_order_number_is_its_own_rejected_entry() -> None:
    _, orders = read(HEADER + "1,EUR,A,1,1,,,\n,EUR,B,1,1,,,\n")
    assert orders[1].number == "" and errors_of(orders[1]) == [(3, "order_number", "", "value_missing")]
    assert not orders[0].rejected


# --- formulas ---------------------------------------------------------------------------------------


def test_formula_looking_cells_are_kept_as_text_with_a_warning() -> None:
    reader, orders = read(HEADER + "1,EUR,S,1,1,\"=cmd|' /C calc'!A0\",,\n")
    assert orders[0].lines[0].title == "=cmd|' /C calc'!A0"
    assert [w.code for w in reader.warnings] == ["cell_formula"]


@pytest.mark.parametrize("cell", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_a_formula_looking_cell_is_neutralised_for_spreadsheets(cell: str) -> None:
    assert neutralise(cell) == "'" + cell
    assert neutralise("plain") == "plain"


# --- streaming ------------------------------------------------------------------------------------


class CountingFile(io.BytesIO):
    """A file that refuses to be read whole and records the largest read."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.largest = 0

    def read(self, size: int | None = -1) -> bytes:
        assert size is not None and size >= 0, "the reader must never read the whole file"
        self.largest = max(self.largest, size)
        return super().read(size)

    def readline(self, size: int | None = -1) -> bytes:
        assert size is not None and size >= 0, "a line is read with a bound"
        line = super().readline(size)
        self.largest = max(self.largest, len(line))
        return line


def test_the_reader_streams_with_bounded_reads_and_yields_orders_before_the_end() -> None:
    body = (HEADER + "".join(f"{i},EUR,S,1,1,t,,\n" for i in range(20_000))).encode()
    source = CountingFile(body)
    reader = CsvOrders(source)
    first = next(iter(reader))
    assert first.number == "0"
    assert source.tell() < 200_000  # the first order came long before the file's end
    assert sum(1 for _ in reader) == 19_999
    assert source.largest <= 64 * 1024


# --- properties ---------------------------------------------------------------------------------------

_text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x00") | st.sampled_from(',;"\n'),
    max_size=20,
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(
    titles=st.lists(_text, min_size=1, max_size=8),
    delimiter=st.sampled_from([Delimiter.COMMA, Delimiter.SEMICOLON]),
    encoding=st.sampled_from([Encoding.UTF8, Encoding.WINDOWS_1252]),
    bom=st.booleans(),
)
def test_any_titles_written_by_a_csv_writer_read_back_exactly(
    titles: list[str], delimiter: Delimiter, encoding: Encoding, bom: bool
) -> None:
    if encoding is Encoding.WINDOWS_1252:
        titles = [t.encode("cp1252", "replace").decode("cp1252") for t in titles]
        bom = False
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter.value, lineterminator="\r\n")
    writer.writerow(["order_number", "currency", "sku", "quantity", "unit_price", "title"])
    for i, title in enumerate(titles):
        writer.writerow([f"N{i // 3}", "EUR", f"S{i}", "1", "2.5", title])
    raw = (b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode(encoding.codec.replace("-sig", ""))
    reader = CsvOrders(io.BytesIO(raw), encoding=encoding, delimiter=delimiter)
    lines = [ln for order in reader for ln in order.lines]
    assert [ln.title for ln in lines] == [t.strip() or f"S{i}" for i, t in enumerate(titles)]


@given(st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False, allow_infinity=False))
def test_any_amount_with_two_places_reads_as_the_same_decimal(amount: Decimal) -> None:
    _, orders = read(f"order_number,currency,sku,quantity,unit_price\n1,EUR,S,1,{amount}\n")
    assert orders[0].lines[0].unit_price == amount


def test_the_country_list_is_iso_3166_alpha_2() -> None:
    reserved = {"AC", "CP", "CQ", "DG", "EA", "EU", "EZ", "IC", "QO", "TA", "UN", "XA", "XB", "XK", "ZZ"}
    babel = {k for k in Locale("en").territories if len(k) == 2 and k.isalpha()} - reserved
    assert babel == ALPHA_2 and len(ALPHA_2) == 249
