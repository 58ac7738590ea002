"""RELIABILITY.md "Files" and "Rows" cases, each through the real `loyalty clean` CLI.

Most tests call ``pipeline.cli.main`` in-process (the console script's own entry point, with its
error handling) to stay fast; ``test_error_in_a_subprocess_has_no_traceback`` runs the installed
``loyalty`` executable once to prove the same outside pytest.

Fixture files live in tests/fixtures/raw/; what each row is for is written next to the test that
uses it. Online Retail fixtures are read with configs/sources/online_retail.yaml.
"""

from __future__ import annotations

import csv
import gzip
import io as pyio
import json
import math
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipeline import io
from pipeline.cli import main
from tests.support.faults import assert_disk_full_keeps_old_set, snapshot, unreadable

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
RAW = REPO / "tests" / "fixtures" / "raw"
ONLINE_RETAIL = REPO / "configs" / "sources" / "online_retail.yaml"
EU = REPO / "configs" / "sources" / "csv.yaml"
AS_OF = "2011-12-31T00:00:00Z"


@dataclass
class Outcome:
    code: int
    err: str
    out: Path

    def table(self, name: str) -> pd.DataFrame:
        return pd.read_parquet(self.out / f"{name}.parquet")

    @property
    def manifest(self) -> dict:
        return json.loads((self.out / "manifest.json").read_text())

    @property
    def rejects(self) -> pd.DataFrame:
        return self.table("rejects")

    def reasons(self) -> dict[int, str]:
        return dict(zip(self.rejects["line_number"], self.rejects["reason_code"], strict=True))


@pytest.fixture
def clean(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    def run(
        *inputs: Path,
        config: Path = ONLINE_RETAIL,
        as_of: str = AS_OF,
        out: Path | None = None,
        **clean_params,
    ) -> Outcome:
        # the fixtures are made of bad rows, one per reason: the share limit has its own tests
        clean_params.setdefault("max_reject_share", 1.0)
        params = tmp_path / "params.yaml"
        params.write_text(yaml.safe_dump({"clean": {"as_of": as_of, **clean_params}}))
        out = out or tmp_path / "clean"
        args = ["clean", "--params", str(params), "--source-config", str(config), "--out", str(out)]
        for path in inputs:
            args += ["--input", str(path)]
        capsys.readouterr()
        code = main(args)
        return Outcome(code, capsys.readouterr().err, out)

    return run


def assert_err(outcome: Outcome, *fragments: str) -> None:
    """ERR: non-zero exit, one `error:` line naming the problem, no traceback, no output."""
    assert outcome.code != 0
    errors = [line for line in outcome.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, outcome.err
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    assert "Traceback" not in outcome.err
    assert not outcome.out.exists() or not any(outcome.out.iterdir())


def assert_recon(outcome: Outcome) -> None:
    assert outcome.code == 0, outcome.err
    manifest = outcome.manifest
    assert manifest["reconciled"] is True
    for item in manifest["inputs"]:
        assert item["rows_read"] == item["accepted"] + item["rejected"], item


# --- Files ---------------------------------------------------------------------------------------


@pytest.mark.reliability("files: 0-byte file")
def test_empty_file_is_an_error(clean) -> None:
    assert_err(clean(RAW / "empty.csv"), "empty.csv", "input file is empty")


@pytest.mark.reliability("files: header only")
def test_header_only_gives_zero_rows(clean) -> None:
    outcome = clean(RAW / "header_only.csv")
    assert_recon(outcome)
    assert outcome.manifest["rows_read"] == 0
    assert len(outcome.table("orders")) == 0
    assert len(outcome.table("returns")) == 0


@pytest.mark.reliability("files: UTF-8 with BOM")
def test_bom_gives_the_same_tables(clean, tmp_path: Path) -> None:
    plain = clean(RAW / "utf8.csv")
    orders_plain = plain.table("orders")
    with_bom = clean(RAW / "utf8_bom.csv")
    assert_recon(with_bom)
    pd.testing.assert_frame_equal(with_bom.table("orders"), orders_plain)
    assert with_bom.manifest["rejected"] == 0


@pytest.mark.reliability("files: cp1252 bytes decoded by the fallback")
def test_cp1252_line_is_decoded_by_the_fallback(clean, caplog: pytest.LogCaptureFixture) -> None:
    outcome = clean(RAW / "cp1252.csv")
    assert_recon(outcome)
    assert outcome.manifest["inputs"][0]["encoding_fallback_lines"] == 1
    assert outcome.manifest["rejected"] == 0
    assert "decoded as cp1252" in caplog.text


@pytest.mark.reliability("files: invalid UTF-8 without fallback")
def test_invalid_utf8_without_fallback_is_quarantined(clean, tmp_path: Path) -> None:
    config = yaml.safe_load(ONLINE_RETAIL.read_text())
    config["dialect"]["encoding_fallback"] = None
    strict = tmp_path / "strict.yaml"
    strict.write_text(yaml.safe_dump(config))
    outcome = clean(RAW / "cp1252.csv", config=strict)
    assert_recon(outcome)
    assert outcome.reasons() == {2: "encoding_error"}  # line 3 is plain ASCII and accepted
    assert "\ufffd" in outcome.rejects["raw"].iloc[0]  # kept, with the bad byte marked


@pytest.mark.reliability("files: ; delimiter and decimal comma")
def test_semicolon_and_decimal_comma_with_their_dialect(clean, tmp_path: Path) -> None:
    # eu/orders.csv rows: 2 Sept 3 (dd/mm), 3 Sept 14 with a 1,5 discount, 4 09/14 = bad_date,
    # 5 an `R` return of -7,00, 6 `1.234,50` = non_numeric_amount, 7 an integer total.
    outcome = clean(RAW / "eu", config=EU, as_of="2025-01-01T00:00:00Z")
    assert_recon(outcome)
    assert outcome.reasons() == {4: "bad_date", 6: "non_numeric_amount"}
    orders = outcome.table("orders")
    assert orders["order_id"].tolist() == ["1", "2", "5"]
    # Europe/Paris summer time is UTC+2: 10:00 local is 08:00 UTC; day first, never swapped.
    assert orders["order_ts"].dt.strftime("%Y-%m-%d %H:%M").tolist() == [
        "2024-09-03 08:00",
        "2024-09-14 08:00",
        "2024-09-16 08:00",
    ]
    assert orders["gross_amount"].tolist() == [12.5, 7.0, 20.0]
    assert orders["discount_amount"].tolist() == [0.0, 1.5, 0.0]
    assert outcome.table("returns")["amount"].tolist() == [7.0]


@pytest.mark.reliability("files: wrong delimiter")
def test_wrong_delimiter_is_an_error_naming_the_columns(clean) -> None:
    assert_err(
        clean(RAW / "eu" / "orders.csv"),
        "orders.csv",
        "required columns missing",
        "wrong delimiter?",
    )


PURCHASE_LOG = {
    "name": "purchase_log",
    "dialect": {"delimiter": "whitespace"},
    "tables": {
        "transactions": {
            "files": ["*.txt"],
            "columns": {"customer_id": "user", "order_ts": "day", "amount": "amount"},
        }
    },
    "rules": {"timezone": "UTC", "date_formats": {"order_ts": "%Y%m%d"}},
}


def test_whitespace_purchase_log_without_order_ids(clean, tmp_path: Path) -> None:
    # Padded columns, a tab, a quoted cell with a blank; no order id: one order per customer
    # and day. Line 5 has an extra field (malformed_row); line 6 repeats line 2's day and
    # customer (the same order).
    log = tmp_path / "log" / "purchases.txt"
    log.parent.mkdir()
    log.write_text(
        "user    day        amount\n"
        "  u1    20240105   12.50\n"
        "u2\t20240106   7\n"
        '"u 3"   20240107   1.25\n'
        "u4      20240108   3   extra\n"
        "u1      20240105   2.50\n"
    )
    config = tmp_path / "purchase_log.yaml"
    config.write_text(yaml.safe_dump(PURCHASE_LOG))
    outcome = clean(log.parent, config=config, as_of="2025-01-01T00:00:00Z")
    assert_recon(outcome)
    assert outcome.reasons() == {5: "malformed_row"}
    orders = outcome.table("orders").sort_values("order_ts")
    assert orders["customer_id"].tolist() == ["u1", "u2", "u 3"]
    assert orders["gross_amount"].tolist() == [15.0, 7.0, 1.25]
    assert outcome.manifest["transactions"]["order_id_rule"].startswith("derived")


def test_a_blank_delimiter_under_padded_columns_names_the_fix(clean, tmp_path: Path) -> None:
    log = tmp_path / "purchases.txt"
    log.write_text("user  day  amount\nu1  20240105  1\n")
    config = tmp_path / "purchase_log.yaml"
    config.write_text(yaml.safe_dump({**PURCHASE_LOG, "dialect": {"delimiter": " "}}))
    assert_err(clean(log, config=config), "duplicate column names", "delimiter: whitespace")


@pytest.mark.reliability("files: ragged rows, unbalanced quotes")
def test_ragged_rows_and_unbalanced_quotes_are_quarantined(clean) -> None:
    # ragged.csv: 2 ok; 3 one field short; 4 one field too many; 5-6 a quoted line break (ok);
    # 7 opens a quote that never closes, so lines 7-9 are one record (the CSV rule) -> rejected.
    outcome = clean(RAW / "ragged.csv")
    assert_recon(outcome)
    assert outcome.reasons() == {3: "malformed_row", 4: "malformed_row", 7: "malformed_row"}
    assert outcome.manifest["inputs"][0]["rows_read"] == 5
    swallowed = outcome.rejects.set_index("line_number").loc[7, "raw"]
    assert swallowed.count("\n") == 2 and "489439" in swallowed
    assert outcome.table("orders")["order_id"].tolist() == ["489434", "489437"]


@pytest.mark.reliability("files: missing or renamed columns")
def test_renamed_columns_are_an_error_listing_expected_and_found(clean) -> None:
    assert_err(
        clean(RAW / "renamed_columns.csv"),
        "renamed_columns.csv:1",
        "Invoice or InvoiceNo",
        "Customer ID or CustomerID",
        "found ['Bill'",
    )


@pytest.mark.reliability("files: both Online Retail namings")
def test_online_retail_v1_naming_is_mapped(clean) -> None:
    outcome = clean(RAW / "online_retail_v1_naming.csv")
    assert_recon(outcome)
    orders = outcome.table("orders")
    assert orders[["customer_id", "order_id", "n_items"]].values.tolist() == [
        ["17850", "536365", 12]
    ]


@pytest.mark.reliability("files: extra columns")
def test_extra_columns_are_dropped_with_a_warning(clean, caplog: pytest.LogCaptureFixture) -> None:
    outcome = clean(RAW / "extra_columns.csv")
    assert_recon(outcome)
    assert "extra columns dropped: ['Country', 'Promo', 'Warehouse']" in caplog.text
    assert len(outcome.table("orders")) == 1


@pytest.mark.reliability("files: duplicate header names")
def test_duplicate_header_names_are_an_error(clean) -> None:
    assert_err(
        clean(RAW / "duplicate_header.csv"),
        "duplicate_header.csv:1",
        "duplicate column names ['Price']",
    )


@pytest.mark.reliability("files: .gz input")
def test_gzip_is_read_transparently(clean, tmp_path: Path) -> None:
    packed = tmp_path / "rows.csv.gz"
    packed.write_bytes(gzip.compress((RAW / "online_retail_rows.csv").read_bytes(), mtime=0))
    gz = clean(packed)
    assert_recon(gz)
    gz_orders, gz_reasons = gz.table("orders"), gz.reasons()
    plain = clean(RAW / "online_retail_rows.csv")
    pd.testing.assert_frame_equal(gz_orders, plain.table("orders"))
    assert gz_reasons == plain.reasons()


@pytest.mark.reliability("files: .xlsx")
def test_xlsx_reads_every_sheet_and_drops_their_overlap(clean, tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    header = [
        "Invoice",
        "StockCode",
        "Description",
        "Quantity",
        "InvoiceDate",
        "Price",
        "Customer ID",
        "Country",
    ]
    book = openpyxl.Workbook()
    first = book.active
    first.title = "Year 2009-2010"
    first.append(header)
    first.append(
        [489434, "85048", "GLASS BALL", 12, pd.Timestamp("2010-12-01 07:45"), 6.95, 13085.0, "UK"]
    )
    second = book.create_sheet("Year 2010-2011")
    second.append(header)
    # the overlap: the same invoice in both sheets (the official workbook repeats 2010-12-01..09)
    second.append(
        [489434, "85048", "GLASS BALL", 12, pd.Timestamp("2010-12-01 07:45"), 6.95, 13085.0, "UK"]
    )
    second.append(
        [539000, "85048", "GLASS BALL", 1, pd.Timestamp("2010-12-15 09:00"), 6.95, 17850.0, "UK"]
    )
    path = tmp_path / "online_retail_II.xlsx"
    book.save(path)
    outcome = clean(path)
    assert_recon(outcome)
    assert outcome.table("orders")["order_id"].tolist() == ["489434", "539000"]
    rejects = outcome.rejects
    assert rejects[["source_file", "line_number", "reason_code"]].values.tolist() == [
        ["online_retail_II.xlsx[Year 2010-2011]", 2, "sheet_overlap"]
    ]


@pytest.mark.reliability("files: Parquet")
def test_parquet_export_gives_the_same_tables(clean, tmp_path: Path) -> None:
    source = pd.read_csv(RAW / "online_retail_v1_naming.csv", dtype={"CustomerID": "float64"})
    path = tmp_path / "export.parquet"
    source.to_parquet(path, index=False)
    outcome = clean(path)
    assert_recon(outcome)
    assert outcome.table("orders")[["customer_id", "order_id"]].values.tolist() == [
        ["17850", "536365"]
    ]


@pytest.mark.reliability("files: unsupported format")
@pytest.mark.parametrize("name", ["export.xls", "export.zip"])
def test_unsupported_format_is_an_error(clean, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    assert_err(clean(path), name, "unsupported format")


@pytest.mark.reliability("files: binary file")
def test_binary_file_is_an_error(clean, tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(bytes(range(256)) * 4)
    assert_err(clean(path), "export.csv", "binary file")


# --- Files: line ends, record length, wide Unicode, NUL bytes -----------------------------------
# Rows are written by `_lines`: invoice 5000NN, one customer per line (1200NN), so each accepted
# line is its own order; line N of the file is invoice 5000(N-2).


def _lines(n: int, description: str = "GLASS BALL") -> list[str]:
    header = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"
    return [header] + [
        f"5000{i:02d},85048,{description},2,2010-03-01 10:00:00,1.25,1200{i:02d},France"
        for i in range(n)
    ]


def _csv_count(data: bytes) -> int:
    """Records Python's csv module reads (blank lines, which it returns as [], not counted)."""
    text = data.decode("utf-8-sig")
    return sum(1 for row in csv.reader(pyio.StringIO(text, newline="")) if row) - 1


@pytest.mark.reliability("files: CR, LF and CRLF line ends, mixed in one file")
def test_cr_lf_and_crlf_line_ends_are_all_record_ends(clean, tmp_path: Path) -> None:
    lines = _lines(6)
    lines[3] = lines[3].replace("GLASS BALL", '"GLASS\rBALL"')  # a CR inside quotes: the field's
    lines[4] = lines[4].replace("GLASS BALL", '"GLASS\r\nBALL"')  # a CRLF inside quotes too
    ends = ["\r", "\n", "\r\n", "\r", "\r\n\r\n", "\n", "\r"]  # a blank line after line 5
    data = "".join(line + end for line, end in zip(lines, ends, strict=True)).encode()
    path = tmp_path / "mixed.csv"
    path.write_bytes(data)
    outcome = clean(path)
    assert_recon(outcome)
    assert outcome.manifest["inputs"][0]["rows_read"] == 6 == _csv_count(data)
    assert outcome.manifest["rejected"] == 0
    orders = outcome.table("orders").sort_values("order_id")
    assert orders["order_id"].tolist() == [f"5000{i:02d}" for i in range(6)]
    plain = tmp_path / "plain.csv"
    plain.write_text("\n".join(_lines(6)) + "\n")
    assert outcome.table("orders")["customer_id"].tolist() == (
        clean(plain).table("orders")["customer_id"].tolist()
    )


@pytest.mark.reliability("files: one record longer than the record-length limit")
def test_a_record_over_the_limit_is_quarantined_and_the_rest_read(clean, tmp_path: Path) -> None:
    lines = _lines(5)
    lines[3] = lines[3].replace("GLASS BALL", "X" * 5000)  # line 4: 5 KB, over a 1 KiB limit
    lines[5] = lines[5].replace("GLASS BALL", '"OPEN')  # line 6: an unclosed quote runs on...
    lines.append("Y" * 3000)  # ...into line 7, 3 KB more: one record, over the limit
    path = tmp_path / "long.csv"
    path.write_text("\r\n".join(lines) + "\r\n")
    outcome = clean(path, max_record_bytes=1024)
    assert_recon(outcome)
    assert outcome.reasons() == {4: "record_too_long", 6: "record_too_long"}
    raw = outcome.rejects.set_index("line_number")["raw"]
    assert raw[4].startswith("500002,85048,XXX") and len(raw[4]) < 1200
    assert raw[4].endswith(f"[truncated: a record of {len(lines[3]):,} bytes]")
    assert outcome.table("orders")["order_id"].tolist() == ["500000", "500001", "500003"]
    assert "500004" in raw[6]
    default = clean(path)  # under the default limit (1 MiB) line 4 is an order
    assert default.reasons() == {6: "malformed_row"}


@pytest.mark.reliability("files: gzip bomb with no newline")
def test_a_gzip_bomb_line_is_quarantined_without_reading_it_whole(clean, tmp_path: Path) -> None:
    # three good lines, then 8 MB of one line without a line break (the bomb shape; the
    # benchmark benchmarks/bench_long_record.py runs gigabytes of it)
    path = tmp_path / "bomb.csv.gz"
    with gzip.open(path, "wb", compresslevel=1) as handle:
        handle.write(("\n".join(_lines(3)) + "\n500099,").encode())
        for _ in range(8):
            handle.write(b"a" * 2**20)
    outcome = clean(path, max_record_bytes=4096)
    assert_recon(outcome)
    assert outcome.reasons() == {5: "record_too_long"}
    raw = outcome.rejects["raw"].iloc[0]
    assert raw.startswith("500099,aaa") and raw.endswith(f"a record of {7 + 8 * 2**20:,} bytes]")
    assert outcome.manifest["inputs"][0]["rows_read"] == 4
    assert outcome.table("orders")["order_id"].tolist() == ["500000", "500001", "500002"]


@pytest.mark.reliability("files: UTF-16/UTF-32 with a BOM")
@pytest.mark.parametrize(
    ("codec", "suffix"),
    [("utf-16-le", ".csv"), ("utf-16-be", ".csv"), ("utf-32-le", ".csv.gz"), ("utf-32-be", ".csv")],
)
def test_utf16_and_utf32_with_a_bom_are_decoded(
    clean, tmp_path: Path, codec: str, suffix: str
) -> None:
    lines = _lines(4, description="CAFÉ Ω")
    lines[2] = lines[2].replace("CAFÉ Ω", '"CAFÉ\r\nΩ"')  # lines 3-4: a quoted line break
    text = "\ufeff" + "\r\n".join(lines) + "\r\n"
    data = text.encode(codec)
    path = tmp_path / f"wide{suffix}"
    path.write_bytes(gzip.compress(data, mtime=0) if suffix.endswith(".gz") else data)
    plain = tmp_path / "plain.csv"
    plain.write_text(text.removeprefix("\ufeff"), encoding="utf-8", newline="")
    outcome = clean(path)
    assert_recon(outcome)
    assert outcome.manifest["rejected"] == 0
    assert outcome.manifest["inputs"][0]["rows_read"] == 4
    wide_orders = outcome.table("orders")
    pd.testing.assert_frame_equal(wide_orders, clean(plain).table("orders"))


@pytest.mark.reliability("files: UTF-16 without a BOM")
def test_utf16_without_a_bom_is_an_error_naming_it(clean, tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes("\n".join(_lines(3)).encode("utf-16-le"))
    assert_err(clean(path), "export.csv", "binary file", "UTF-16LE", "iconv")


@pytest.mark.reliability("files: NUL bytes")
@pytest.mark.parametrize("line", [3, 400])  # in the first 8 KiB, and far after it
def test_a_nul_byte_quarantines_its_record_wherever_it_is(clean, tmp_path: Path, line: int) -> None:
    lines = _lines(450)
    lines[line - 1] = lines[line - 1].replace("GLASS BALL", "GLASS\x00BALL")
    path = tmp_path / "nul.csv"
    path.write_text("\n".join(lines) + "\n")
    outcome = clean(path)
    assert_recon(outcome)
    assert outcome.reasons() == {line: "nul_byte"}
    assert outcome.rejects["raw"].iloc[0] == lines[line - 1]
    assert len(outcome.table("orders")) == 449


@pytest.mark.reliability("files: a zero-filled file")
def test_a_file_of_nul_bytes_is_binary(clean, tmp_path: Path) -> None:
    path = tmp_path / "zeros.csv"
    path.write_bytes(b"\x00" * 20_000)
    assert_err(clean(path), "zeros.csv", "binary file")


@pytest.mark.reliability("files: output never overwrites an input")
def test_output_equal_to_input_is_refused(clean, tmp_path: Path) -> None:
    folder = tmp_path / "clean"
    folder.mkdir()
    shutil.copy(RAW / "utf8.csv", folder / "utf8.csv")
    outcome = clean(folder)
    assert outcome.code != 0 and "output path is also an input" in outcome.err


@pytest.mark.reliability("security: --out inside an input folder")
def test_output_inside_the_input_folder_is_refused(clean, tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    shutil.copy(RAW / "utf8.csv", folder / "utf8.csv")
    assert_err(clean(folder, out=folder / "clean"), "inside input folder")
    assert sorted(p.name for p in folder.iterdir()) == ["utf8.csv"]


@pytest.mark.reliability("security: --out folder holding an input")
def test_output_folder_holding_the_input_is_refused(clean, tmp_path: Path) -> None:
    """The stage replaces its folder whole: `--out .` would take the export with it."""
    folder = tmp_path / "work"
    folder.mkdir()
    shutil.copy(RAW / "utf8.csv", folder / "utf8.csv")
    outcome = clean(folder / "utf8.csv", out=folder)
    assert outcome.code != 0 and "output folder holds the input" in outcome.err
    assert "Traceback" not in outcome.err
    assert sorted(p.name for p in folder.iterdir()) == ["utf8.csv"]


@pytest.mark.reliability("security: --out folder of someone's own files")
def test_a_folder_of_other_files_is_never_replaced(clean, tmp_path: Path) -> None:
    out = tmp_path / "clean"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    outcome = clean(RAW / "utf8.csv")
    assert outcome.code != 0 and "notes.txt, which this stage does not write" in outcome.err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


@pytest.mark.reliability("files: a symlink loop as input")
def test_symlink_loop_as_input_is_an_error(clean, tmp_path: Path) -> None:
    loop = tmp_path / "loop.csv"
    loop.symlink_to(loop)
    assert_err(clean(loop), "loop.csv", "symlink loop")


@pytest.mark.reliability("files: a directory as input")
def test_directory_without_an_export_is_an_error(clean, tmp_path: Path) -> None:
    folder = tmp_path / "nothing"
    folder.mkdir()
    assert_err(clean(folder), "nothing", "no transactions file")


@pytest.mark.reliability("files: an unreadable file as input")
def test_unreadable_file_is_an_error(
    clean, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "export.csv"
    shutil.copy(RAW / "utf8.csv", path)
    unreadable(path, monkeypatch)
    assert_err(clean(path), "export.csv", "cannot read it (Permission denied)")


@pytest.mark.reliability("infrastructure: disk full while a stage writes its folder (clean)")
def test_disk_full_leaves_the_previous_complete_set(clean, monkeypatch: pytest.MonkeyPatch) -> None:
    first = clean(RAW / "utf8.csv")
    assert first.code == 0, first.err

    def rerun() -> tuple[int, str]:
        outcome = clean(RAW / "online_retail_rows.csv")
        return outcome.code, outcome.err

    # the tables are written, then the disk fills: the old set, not new tables + old manifest
    disk = assert_disk_full_keeps_old_set(
        monkeypatch,
        rerun,
        [first.out],
        at="manifest.json",
        written_first="orders.parquet",
        named=first.out / "manifest.json",
    )
    disk.clear()
    before = snapshot(first.out)
    assert rerun()[0] == 0  # a rerun succeeds, with the new set
    assert snapshot(first.out) != before


def test_error_in_a_subprocess_has_no_traceback(tmp_path: Path) -> None:
    loyalty = Path(sys.executable).parent / "loyalty"
    out = tmp_path / "clean"
    result = subprocess.run(
        [
            str(loyalty),
            "clean",
            "--source-config",
            str(ONLINE_RETAIL),
            "--input",
            str(RAW / "empty.csv"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        f"error: {RAW / 'empty.csv'}: input file is empty"
    ]
    assert not out.exists()


# --- Rows ----------------------------------------------------------------------------------------
# online_retail_rows.csv, line by line:
#  2, 3  invoice 489434 of 13085: two product lines          -> one order, 24 items, 2 products
#  4     exact duplicate of line 3                           -> duplicate_row
#  5     POST on 489434                                      -> non-product: excluded, counted
#  6     C489449, quantity -2                                -> a return of 13.90, never an order
#  7     quantity -3 without the C marker                    -> non_positive_quantity
#  8     price 0 (a free item) for 17850, 2009-12-01 10:41     -> kept: a zero-value order
#  9     no customer id                                      -> missing_customer_id
# 10-12  ids "17850.0", " 17850", "17850"                    -> one customer 17850
# 13     date 01/12/2009 09:00 (not the source's format)     -> bad_date
# 14     2030, after the as-of                               -> future_date
# 15     2010-03-28 01:30 London (DST gap)                   -> 01:00 UTC (moved forward)
# 16     2010-10-31 01:30 London (DST overlap)               -> 00:30 UTC (first occurrence)
# 17     quantity 80995 for 16446                            -> kept and flagged
# 18-20  "12 pcs", "N/A", "1,234.50"                         -> non_numeric_quantity/unit_price
# 21     description "=SUM(A1:A9)", price "abc"              -> rejected, raw kept verbatim
# 22     description "@IMPORTANT FRAME" for 16446            -> accepted


@pytest.fixture
def rows(clean) -> Outcome:
    outcome = clean(RAW / "online_retail_rows.csv")
    assert_recon(outcome)
    return outcome


@pytest.mark.reliability("rows: every row accepted or rejected (RECON)")
def test_rows_reconcile(rows: Outcome) -> None:
    manifest = rows.manifest
    assert manifest["rows_read"] == 21
    assert manifest["accepted"] == 21 - len(rows.rejects)


@pytest.mark.reliability("rows: zero-value lines")
def test_a_zero_value_line_keeps_its_order_and_adds_no_spend(rows: Outcome) -> None:
    # Line 8's free item is an order of 17850 (recency and frequency), worth 0, counted.
    orders = rows.table("orders")
    free = orders[orders["order_id"] == "489451"]
    assert free["customer_id"].tolist() == ["17850"] and free["gross_amount"].tolist() == [0.0]
    assert rows.manifest["transactions"]["zero_value_lines"] == 1
    assert rows.manifest["transactions"]["zero_value_orders"] == 1


def test_zero_value_lines_can_be_rejected_and_negative_prices_always_are(
    clean, tmp_path: Path
) -> None:
    config = yaml.safe_load(ONLINE_RETAIL.read_text())
    config["rules"]["zero_value_lines"] = "reject"
    strict = tmp_path / "strict.yaml"
    strict.write_text(yaml.safe_dump(config))
    assert clean(RAW / "online_retail_rows.csv", config=strict).reasons()[8] == "non_positive_price"
    negative = tmp_path / "negative.csv"
    lines = (RAW / "online_retail_rows.csv").read_text().splitlines()
    negative.write_text("\n".join([lines[0], lines[7].replace(",0,", ",-1.5,")]) + "\n")
    assert clean(negative).reasons() == {2: "non_positive_price"}


@pytest.mark.reliability("rows: reject reasons")
def test_each_bad_row_has_its_own_reason(rows: Outcome) -> None:
    assert rows.reasons() == {
        4: "duplicate_row",
        7: "non_positive_quantity",
        9: "missing_customer_id",
        13: "bad_date",
        14: "future_date",
        18: "non_numeric_quantity",
        19: "non_numeric_unit_price",
        20: "non_numeric_unit_price",
        21: "non_numeric_unit_price",
    }


@pytest.mark.reliability("rows: cancellation")
def test_cancellation_is_a_return_never_an_order(rows: Outcome) -> None:
    returns = rows.table("returns")
    assert returns[["customer_id", "return_id", "amount"]].values.tolist() == [
        ["13085", "C489449", 13.9]
    ]
    assert returns["order_id"].isna().all()
    assert not rows.table("orders")["order_id"].str.startswith("C").any()


@pytest.mark.reliability("rows: non-product codes")
def test_non_product_lines_are_excluded_from_spend_and_counted(rows: Outcome) -> None:
    order = rows.table("orders").set_index("order_id").loc["489434"]
    assert order["gross_amount"] == pytest.approx(12 * 6.95 + 12 * 6.75)  # no 18.00 postage
    assert (order["n_items"], order["n_distinct_products"]) == (24, 2)
    assert rows.manifest["transactions"]["non_product_by_code"] == {"POST": 1}


@pytest.mark.reliability("rows: missing customer id rate")
def test_missing_customer_id_rate_is_in_the_manifest(rows: Outcome) -> None:
    assert rows.manifest["transactions"]["missing_customer_id_rate"] == pytest.approx(
        1 / 21, abs=1e-6
    )


@pytest.mark.reliability("rows: missing customer id rate over the threshold warns")
def test_missing_customer_id_rate_over_the_threshold_warns(
    clean, caplog: pytest.LogCaptureFixture
) -> None:
    quiet = clean(RAW / "online_retail_rows.csv")
    assert quiet.code == 0 and "have no customer id" not in caplog.text
    loud = clean(RAW / "online_retail_rows.csv", missing_customer_id_warn_rate=0.01)
    assert loud.code == 0
    assert "4.8% of transaction lines have no customer id (threshold 1.0%)" in caplog.text


def test_help_shows_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["clean", "--help"]) == 0
    assert (
        "Example: loyalty clean --params params.yaml --input data/synthetic"
        in capsys.readouterr().out
    )


@pytest.mark.reliability("rows: id spellings")
def test_id_spellings_are_one_customer(rows: Outcome) -> None:
    orders = rows.table("orders")
    assert sorted(orders["customer_id"].unique()) == ["13085", "16446", "17850"]
    assert orders.loc[orders["customer_id"] == "17850", "order_id"].tolist() == [
        "489451",  # the zero-value order (line 8)
        "489453",
        "489454",
        "489455",
        "489458",
        "489459",
    ]


@pytest.mark.reliability("rows: DST gap and overlap")
def test_local_times_in_dst_gap_and_overlap_follow_the_rule(rows: Outcome) -> None:
    orders = rows.table("orders").set_index("order_id")
    assert str(orders.loc["489458", "order_ts"]) == "2010-03-28 01:00:00+00:00"
    assert str(orders.loc["489459", "order_ts"]) == "2010-10-31 00:30:00+00:00"
    assert str(orders.loc["489434", "order_ts"]) == "2009-12-01 07:45:00+00:00"  # GMT in winter


@pytest.mark.reliability("rows: extreme quantity")
def test_extreme_quantity_is_kept_and_flagged(rows: Outcome) -> None:
    orders = rows.table("orders").set_index("order_id")
    assert orders.loc["489460", "n_items"] == 80995
    assert rows.manifest["transactions"]["extreme_lines_flagged"] == 1


@pytest.mark.reliability("rows: formula text")
def test_formula_text_is_stored_verbatim_and_neutralised_on_csv_export(
    rows: Outcome, tmp_path: Path
) -> None:
    raw = rows.rejects.set_index("line_number").loc[21, "raw"]
    assert raw == "489464,22041,=SUM(A1:A9),3,2010-11-01 09:00:00,abc,17850,United Kingdom"
    exported = tmp_path / "rejects.csv"
    io.write_csv(exported, rows.rejects.assign(raw=["=SUM(A1:A9)"] * len(rows.rejects)))
    assert "'=SUM(A1:A9)" in exported.read_text()


def test_outputs_are_byte_identical_across_runs(clean, tmp_path: Path) -> None:
    first = clean(RAW / "online_retail_rows.csv")
    saved = {p.name: p.read_bytes() for p in first.out.iterdir()}
    second = clean(RAW / "online_retail_rows.csv")
    assert {p.name: p.read_bytes() for p in second.out.iterdir()} == saved


# --- extreme numbers -----------------------------------------------------------------------------
# Each line below is one customer's order of one line (invoice = 490000 + line number); the
# comment says why it is there. Quantity and price caps: rules.max_quantity 1e9, max_amount 1e12.
OR_HEADER = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"
EXTREME_LINES = [
    # (quantity, price, reason or None = accepted)
    ("12", "6.95", None),  # an ordinary line
    ("1e20", "1.25", "quantity_out_of_range"),  # wrapped to -2**63 when cast to int64
    ("1e308", "1.25", "quantity_out_of_range"),  # finite, but sums overflow
    ("1e309", "1.25", "quantity_out_of_range"),  # parses to inf
    ("9" * 400, "1.25", "quantity_out_of_range"),  # a 400-digit integer: inf as float64
    ("-" + "9" * 400, "1.25", "quantity_out_of_range"),  # ... and -inf, no cancellation
    ("2", "1e308", "unit_price_out_of_range"),  # 2 x 1e308 = inf
    ("2", "-1e309", "unit_price_out_of_range"),  # -inf, not non_positive_price
    ("inf", "1.25", "non_numeric_quantity"),  # not a plain number
    ("3", "Infinity", "non_numeric_unit_price"),
    ("3", "NaN", "non_numeric_unit_price"),
    ("-inf", "1.25", "non_numeric_quantity"),
    ("1e6", "1e7", "amount_out_of_range"),  # each within its cap; the line is worth 1e13
    ("5e8", "1000", None),  # within every cap: kept, flagged as extreme (worth 5e11)
    ("0.5", "2.5", None),  # a weight: n_items rounds to at least one item
]


def _extreme_export(path: Path, lines: list[tuple[str, str, str | None]]) -> Path:
    body = [
        f"{490002 + i},85048,MUG,{quantity},2010-06-01 10:00:00,{price},{13000 + i},UK"
        for i, (quantity, price, _) in enumerate(lines)
    ]
    path.write_text("\n".join([OR_HEADER, *body]) + "\n")
    return path


def _assert_finite(outcome: Outcome) -> None:
    """No clean table holds inf, -inf or NaN in a money or count column."""
    for name in ("orders", "returns", "feedback"):
        if (outcome.out / f"{name}.parquet").exists():
            numbers = outcome.table(name).select_dtypes("number")
            assert numbers.apply(lambda c: c.dropna().map(math.isfinite).all()).all(), name


@pytest.mark.reliability("rows: extreme quantity or price (1e20, 1e308, 1e309, inf, 400 digits)")
def test_extreme_numbers_are_quarantined_each_with_its_reason(clean, tmp_path: Path) -> None:
    outcome = clean(_extreme_export(tmp_path / "extreme.csv", EXTREME_LINES))
    assert_recon(outcome)
    assert "Traceback" not in outcome.err
    expected = {i + 2: r for i, (_, _, r) in enumerate(EXTREME_LINES) if r is not None}
    assert outcome.reasons() == expected
    assert outcome.manifest["rejected_by_reason"] == {
        "amount_out_of_range": 1,
        "non_numeric_quantity": 2,
        "non_numeric_unit_price": 2,
        "quantity_out_of_range": 5,
        "unit_price_out_of_range": 2,
    }
    _assert_finite(outcome)
    orders = outcome.table("orders").set_index("customer_id")
    assert sorted(orders.index) == ["13000", "13013", "13014"]
    assert orders.loc["13013", "gross_amount"] == 5e11
    assert orders.loc["13014", "n_items"] == 1
    assert outcome.manifest["transactions"]["extreme_lines_flagged"] == 1


@pytest.mark.reliability("rows: extreme quantity or price (1e20, 1e308, 1e309, inf, 400 digits)")
def test_extreme_numbers_on_cancellations_and_a_source_cap(clean, tmp_path: Path) -> None:
    export = tmp_path / "extreme.csv"
    export.write_text(
        "\n".join(
            [
                OR_HEADER,
                "C490002,85048,MUG,-1e309,2010-06-01 10:00:00,1.25,13000,UK",  # an inf return
                "C490003,85048,MUG,-2,2010-06-01 10:00:00,1.25,13001,UK",  # an ordinary return
                "490004,85048,MUG,2000,2010-06-01 10:00:00,1.25,13002,UK",  # above a cap of 1000
            ]
        )
        + "\n"
    )
    config = yaml.safe_load(ONLINE_RETAIL.read_text())
    config["rules"]["max_quantity"] = 1000
    capped = tmp_path / "capped.yaml"
    capped.write_text(yaml.safe_dump(config))
    outcome = clean(export, config=capped)
    assert_recon(outcome)
    assert outcome.reasons() == {2: "quantity_out_of_range", 4: "quantity_out_of_range"}
    assert outcome.table("returns")["amount"].tolist() == [2.5]
    _assert_finite(outcome)


def test_a_cap_above_what_int64_and_float64_can_sum_is_a_config_error(
    clean, tmp_path: Path
) -> None:
    config = yaml.safe_load(ONLINE_RETAIL.read_text())
    config["rules"]["max_quantity"] = 1e300
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    assert_err(clean(RAW / "utf8.csv", config=bad), "bad.yaml", "rules.max_quantity")


def _snapshot(tables: Outcome) -> pd.DataFrame:
    """Features of every customer at a cutoff after all orders (the scoring snapshot)."""
    from pipeline.features.catalog import load_catalog
    from pipeline.features.snapshot import build_snapshot
    from tests.support.params import fixed_features

    snapshot = build_snapshot(
        orders=tables.table("orders"),
        returns=tables.table("returns"),
        feedback=None,
        customers=None,
        cutoff="2011-01-01",
        params=fixed_features(partitions=1, workers=1, active_within_days="any"),
        catalog=load_catalog(REPO / "configs" / "features.yaml"),
    )
    return snapshot.set_index("customer_id")


@pytest.mark.reliability(
    "rows: extreme quantity or price (one huge line changes no other customer's features)"
)
@pytest.mark.parametrize(
    ("quantity", "price", "rejected"),
    [("1e20", "6.95", True), ("1e309", "6.95", True), ("5e8", "1000", False)],
)
def test_one_huge_line_changes_no_other_customers_rows_or_features(
    clean, tmp_path: Path, quantity: str, price: str, rejected: bool
) -> None:
    base = (RAW / "online_retail_rows.csv").read_text()
    huge = f"489999,85048,MUG,{quantity},2010-06-01 10:00:00,{price},13085,United Kingdom\n"
    (tmp_path / "base").mkdir()
    (tmp_path / "huge").mkdir()
    (tmp_path / "base" / "rows.csv").write_text(base)
    (tmp_path / "huge" / "rows.csv").write_text(base + huge)
    before = _keep(clean(tmp_path / "base" / "rows.csv"), tmp_path / "before")
    after = clean(tmp_path / "huge" / "rows.csv")
    assert_recon(after)
    _assert_finite(after)
    assert (after.reasons().get(23) == "quantity_out_of_range") is rejected
    for name in ("orders", "returns"):
        kept, now = before.table(name), after.table(name)
        pd.testing.assert_frame_equal(
            now[now["customer_id"] != "13085"].reset_index(drop=True),
            kept[kept["customer_id"] != "13085"].reset_index(drop=True),
        )
    features_before, features_after = _snapshot(before), _snapshot(after)
    pd.testing.assert_frame_equal(
        features_after.drop(index="13085"), features_before.drop(index="13085")
    )
    if rejected:  # nothing of the huge line reaches its own customer either
        pd.testing.assert_frame_equal(features_after, features_before)


def _keep(outcome: Outcome, where: Path) -> Outcome:
    """Move a run's output aside so the next run of the `clean` fixture does not replace it."""
    assert_recon(outcome)
    shutil.move(outcome.out, where)
    return Outcome(outcome.code, outcome.err, where)


@pytest.mark.reliability("rows: extreme quantity or price (every numeric column)")
def test_extreme_values_in_every_numeric_column(clean, tmp_path: Path) -> None:
    export = tmp_path / "export"
    shutil.copytree(RAW / "synthetic", export)
    with open(export / "transactions.csv", "a") as handle:
        handle.write(  # line 8: discount 1e309; line 9: discount 1e20; line 10: fine
            "500005,16031,CAKE STAND,1,4.23,2024-01-23 09:00:00,123,app,1e309,2024-01-25,\n"
            "500006,16031,CAKE STAND,1,4.23,2024-01-23 09:00:00,123,app,1e20,2024-01-25,\n"
            "500007,16031,CAKE STAND,1,4.23,2024-01-23 09:00:00,123,app,0.25,2024-01-25,\n"
        )
    with open(export / "feedback.csv", "a") as handle:
        handle.write(  # lines 9-14
            "17850,2024-01-13 09:00:00,review,1e309,,\n"
            "17850,2024-01-13 10:00:00,nps," + "9" * 400 + ",,\n"
            "17850,2024-01-13 11:00:00,complaint,,true,1e309\n"
            "17850,2024-01-13 12:00:00,complaint,,true,1e308\n"
            "17850,2024-01-13 13:00:00,complaint,,true,1e6\n"
            "17850,2024-01-13 14:00:00,complaint,,true,Infinity\n"
        )
    outcome = clean(export, config=SYNTHETIC, as_of="2025-01-01T00:00:00Z")
    assert_recon(outcome)
    by_table = {
        table: dict(zip(group["line_number"], group["reason_code"], strict=True))
        for table, group in outcome.rejects.groupby("table")
    }
    assert by_table["transactions"] == {
        6: "negative_discount",
        7: "bad_date",
        8: "discount_out_of_range",
        9: "discount_out_of_range",
    }
    assert {k: v for k, v in by_table["feedback"].items() if k >= 9} == {
        9: "score_out_of_range",
        10: "score_out_of_range",
        11: "resolution_hours_out_of_range",
        12: "resolution_hours_out_of_range",
        13: "resolution_hours_out_of_range",
        14: "non_numeric_resolution_hours",
    }
    _assert_finite(outcome)
    assert outcome.table("orders").set_index("order_id").loc["500007", "discount_amount"] == 0.25


@pytest.mark.reliability("rows: extreme quantity or price (every numeric column)")
def test_extreme_amounts_in_an_amount_export(clean, tmp_path: Path) -> None:
    export = tmp_path / "orders.csv"
    export.write_text(
        "client;order_no;date;total;discount;channel\n"
        "A1;1;03/09/2024 10:00;12,50;0;web\n"
        "A2;2;03/09/2024 10:00;1e20;0;web\n"
        "A3;3;03/09/2024 10:00;1e309;0;web\n"
        "A4;R4;03/09/2024 10:00;-1e309;0;web\n"
        "A5;5;03/09/2024 10:00;7,5;1e13;web\n"
    )
    outcome = clean(export, config=EU, as_of="2025-01-01T00:00:00Z")
    assert_recon(outcome)
    assert outcome.reasons() == {
        3: "amount_out_of_range",
        4: "amount_out_of_range",
        5: "amount_out_of_range",
        6: "discount_out_of_range",
    }
    assert outcome.table("orders")["customer_id"].tolist() == ["A1"]
    _assert_finite(outcome)


# --- Unicode ids ---------------------------------------------------------------------------------
# One customer 17850 written seven ways, each line its own order (invoice 489440 + n):
UNICODE_IDS = [
    "17850",
    "\uff11\uff17\uff18\uff15\uff10",  # fullwidth digits (NFKC)
    "\u0661\u0667\u0668\u0665\u0660",  # Arabic-Indic digits (not NFKC: category Nd)
    "\u06f1\u06f7\u06f8\u06f5\u06f0.0",  # Extended Arabic-Indic (Persian), written as a float
    "178\u200b50",  # a zero-width space inside
    "\ufeff17850",  # a BOM (U+FEFF) in front
    "\u200e17850\u3000",  # a left-to-right mark and an ideographic space
]


@pytest.mark.reliability("rows: ids with fullwidth or other Unicode digits, zero-width characters")
def test_unicode_spellings_of_an_id_are_one_customer(clean, tmp_path: Path) -> None:
    body = [
        f"{489440 + n},85048,MUG,1,2010-06-0{1 + n} 10:00:00,2.5,{customer},UK"
        for n, customer in enumerate(UNICODE_IDS)
    ]
    body.append(  # a fullwidth cancellation of the first order, fullwidth stock code too
        "\uff23\uff14\uff18\uff19\uff14\uff14\uff10,\uff18\uff15\uff10\uff14\uff18,MUG,-1,"
        "2010-06-09 10:00:00,2.5,17850,UK"
    )
    body.append("489450,85048,MUG,1,2010-06-09 10:00:00,2.5,M\u00fcller,UK")  # stays as it is
    export = tmp_path / "ids.csv"
    export.write_text("\n".join([OR_HEADER, *body]) + "\n", encoding="utf-8")
    outcome = clean(export)
    assert_recon(outcome)
    assert outcome.manifest["rejected"] == 0
    orders = outcome.table("orders")
    assert sorted(orders["customer_id"].unique()) == ["17850", "M\u00fcller"]
    assert (orders["customer_id"] == "17850").sum() == len(UNICODE_IDS)
    returns = outcome.table("returns")
    assert returns[["customer_id", "return_id"]].values.tolist() == [["17850", "C489440"]]
    assert outcome.manifest["ids_normalised"] == {
        "transactions": {"customer_id": 6, "order_id": 1, "sku": 1}
    }


@pytest.mark.reliability("rows: ids with fullwidth or other Unicode digits, zero-width characters")
def test_unicode_ids_are_folded_in_every_table(clean, tmp_path: Path) -> None:
    export = tmp_path / "export"
    shutil.copytree(RAW / "synthetic", export)
    with open(export / "customers.csv", "a", encoding="utf-8") as handle:
        handle.write("\uff11\uff12\uff13,2023-06-01,true,west\n")  # 123 (whose line 4 is bad)
        handle.write("\u0661\u0667\u0668\u0665\u0660,2023-06-01,true,west\n")  # 17850 again
    with open(export / "feedback.csv", "a", encoding="utf-8") as handle:
        handle.write("\u200b123,2024-01-24 10:00:00,review,5,,\n")
    outcome = clean(export, config=SYNTHETIC, as_of="2025-01-01T00:00:00Z")
    assert_recon(outcome)
    customers = outcome.rejects[outcome.rejects["table"] == "customers"]
    assert dict(zip(customers["line_number"], customers["reason_code"], strict=True)) == {
        3: "duplicate_customer",
        4: "non_boolean_loyalty_member",
        5: "future_date",
        7: "duplicate_customer",  # the Arabic-Indic 17850
    }
    assert outcome.table("customers")["customer_id"].tolist() == ["123", "17850"]
    feedback = outcome.table("feedback")
    assert feedback.loc[feedback["kind"] == "review", "customer_id"].tolist() == ["123", "17850"]
    assert outcome.manifest["ids_normalised"] == {
        "customers": {"customer_id": 2},
        "feedback": {"customer_id": 1},
        "transactions": {"customer_id": 0, "order_id": 0, "sku": 0},
    }


# --- a big file ----------------------------------------------------------------------------------

BIG_LINES = 200_000
# Peak RSS budget of a clean run on BIG_LINES lines: ~150 MB of imports, one chunk of raw lines
# and its intermediates, the per-(invoice, product) partial sums and the rejects.
BIG_BUDGET_MB = 350
# VmHWM, not ru_maxrss: on Linux ru_maxrss survives fork+exec, so a child of a big pytest
# process would report its parent's peak.
PEAK_SCRIPT = """
import json, re, sys
from pathlib import Path
from pipeline.cli import main
code = main(sys.argv[1:])
hwm_kb = int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1))
print(json.dumps({"code": code, "peak_mb": hwm_kb / 1024}))
"""


@pytest.mark.slow
@pytest.mark.reliability("files: a file larger than memory would like")
def test_big_file_is_read_in_chunks_within_the_memory_budget(tmp_path: Path) -> None:
    header = (RAW / "online_retail_rows.csv").read_text().splitlines()[0]
    body = "".join(
        f"{500000 + i // 4},{20000 + i % 97},ITEM {i % 97},{1 + i % 5},"
        f"2010-{1 + i % 11:02d}-15 10:00:00,{1 + i % 7}.25,{12000 + i % 3000},United Kingdom\n"
        for i in range(BIG_LINES)
    )
    big = tmp_path / "big.csv.gz"
    big.write_bytes(gzip.compress(f"{header}\n{body}".encode(), compresslevel=1, mtime=0))
    config = yaml.safe_load(ONLINE_RETAIL.read_text())
    config["chunk_rows"] = 20_000  # ten chunks
    small_chunks = tmp_path / "chunks.yaml"
    small_chunks.write_text(yaml.safe_dump(config))
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"clean": {"as_of": AS_OF}}))
    out = tmp_path / "clean"
    args = [
        "clean",
        "--params",
        str(params),
        "--source-config",
        str(small_chunks),
        "--input",
        str(big),
        "--out",
        str(out),
    ]
    result = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, *args], capture_output=True, text=True, timeout=300
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["code"] == 0, result.stderr
    assert report["peak_mb"] < BIG_BUDGET_MB, report
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rows_read"] == BIG_LINES == manifest["accepted"] + manifest["rejected"]


# --- the synthetic export format (configs/sources/synthetic.yaml) --------------------------------
# synthetic/transactions.csv: 2-3 invoice 500000 (discount 0.5, delivered 2 days late); 4 return
#   C500001; 5 not delivered yet (empty delivered_date); 6 discount -1; 7 promised 2024-13-01.
# synthetic/feedback.csv: 2 review 4; 3 resolved complaint; 4 complaint with a score; 5 nps 11;
#   6 survey without score; 7 kind "tweet"; 8 complaint resolved "maybe".
# synthetic/customers.csv: 2 ok; 3 "17850.0" again; 4 loyalty "maybe"; 5 signup in 2030.

SYNTHETIC = REPO / "configs" / "sources" / "synthetic.yaml"


@pytest.mark.reliability("rows: feedback and customer rules")
def test_synthetic_export_with_all_three_tables(clean) -> None:
    outcome = clean(RAW / "synthetic", config=SYNTHETIC, as_of="2025-01-01T00:00:00Z")
    assert_recon(outcome)
    by_table = {
        table: dict(zip(group["line_number"], group["reason_code"], strict=True))
        for table, group in outcome.rejects.groupby("table")
    }
    assert by_table == {
        "transactions": {6: "negative_discount", 7: "bad_date"},
        "feedback": {
            4: "score_out_of_range",
            5: "score_out_of_range",
            6: "non_numeric_score",
            7: "invalid_kind",
            8: "non_boolean_resolved",
        },
        "customers": {3: "duplicate_customer", 4: "non_boolean_loyalty_member", 5: "future_date"},
    }
    orders = outcome.table("orders").set_index("order_id")
    assert orders.loc["500000", "discount_amount"] == 0.5
    assert str(orders.loc["500000", "delivered_ts"]) == "2024-01-08 00:00:00+00:00"
    assert pd.isna(orders.loc["500002", "delivered_ts"])
    assert orders["channel"].tolist() == ["app", "web"]  # sorted by customer_id: "123" < "17850"
    feedback = outcome.table("feedback")
    assert feedback["kind"].tolist() == ["review", "complaint"]
    assert feedback["resolved"].tolist() == [pd.NA, True]
    customers = outcome.table("customers")
    assert customers[["customer_id", "loyalty_member"]].values.tolist() == [["17850", True]]
    assert outcome.manifest["provided"] == {
        "channel": True,
        "customers": True,
        "delivery": True,
        "discount": True,
        "feedback": True,
    }


@pytest.mark.reliability("files: truncated .gz")
def test_truncated_gzip_is_an_error(clean, tmp_path: Path) -> None:
    packed = gzip.compress((RAW / "online_retail_rows.csv").read_bytes(), mtime=0)
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(packed[: len(packed) // 2])
    assert_err(clean(path), "cut.csv.gz", "cannot read the file")


def test_unknown_time_zone_in_a_source_config_is_a_config_error(clean, tmp_path: Path) -> None:
    config = yaml.safe_load(ONLINE_RETAIL.read_text())
    config["rules"]["timezone"] = "Europe/Atlantis"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    assert_err(
        clean(RAW / "utf8.csv", config=bad), "bad.yaml", "rules.timezone", "unknown time zone"
    )


# --- a mapping that matches nothing ---------------------------------------------------------------


def _with_order_format(tmp_path: Path, fmt: str) -> Path:
    config = yaml.safe_load(ONLINE_RETAIL.read_text())
    config["rules"]["date_formats"]["order_ts"] = fmt
    path = tmp_path / "formats.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.reliability("rows: a bad strptime directive in a source config")
@pytest.mark.parametrize("fmt", ["%Q/%m/%Y", "%Y-%m-%d %", "", "mixed"])
def test_a_bad_date_format_is_one_line_naming_the_key(clean, tmp_path: Path, fmt: str) -> None:
    outcome = clean(RAW / "utf8.csv", config=_with_order_format(tmp_path, fmt))
    assert outcome.code == 3
    assert_err(outcome, "rules.date_formats: order_ts:")


@pytest.mark.reliability("rows: a date format that matches nothing (100% rejects)")
def test_a_format_that_matches_nothing_fails_with_the_top_reasons(clean, tmp_path: Path) -> None:
    config = _with_order_format(tmp_path, "%d/%m/%Y %H:%M")
    outcome = clean(RAW / "utf8.csv", config=config, max_reject_share=0.5)  # the default
    assert outcome.code == 4
    assert_err(
        outcome, "transactions:", "lines rejected (100.0%", "bad_date 100.0%", "max_reject_share"
    )


def test_the_reject_share_limit_is_a_param(clean, tmp_path: Path) -> None:
    config = _with_order_format(tmp_path, "%d/%m/%Y %H:%M")
    outcome = clean(RAW / "utf8.csv", config=config, max_reject_share=1.0)
    assert_recon(outcome)
    assert outcome.manifest["accepted"] == 0 and set(outcome.manifest["rejected_by_reason"]) == {
        "bad_date"
    }
