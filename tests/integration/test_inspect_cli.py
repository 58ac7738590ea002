"""The real `loyalty inspect` command on small files: what it writes, refuses and reports."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import yaml

from pipeline.cli import main
from pipeline.sources.csv_mapping import load_source_config

pytestmark = pytest.mark.integration

# Rows: two customers with repeats (ids), invoices each of one customer, a C return with a
# negative quantity, day-first dates (14/01 has a day above 12), decimal commas.
ORDERS = """Kunde;Rechnung;Datum;Menge;Preis
K1;R100;03/01/2024 10:00;2;3,50
K1;R100;03/01/2024 10:00;1;12,00
K2;R101;14/01/2024 11:30;4;1,25
K2;CR101;15/01/2024 09:00;-1;1,25
K1;R102;02/02/2024 16:45;1;7,90
K3;R103;20/02/2024 08:15;3;2,00
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "raw").mkdir()
    return tmp_path


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_writes_a_valid_config_with_a_comment_on_each_guess(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(project / "raw" / "Rechnungen 2024.csv", ORDERS)
    assert main(["inspect", "raw/Rechnungen 2024.csv"]) == 0
    path = project / "configs" / "sources" / "rechnungen_2024.yaml"
    config = load_source_config(path)
    assert config.dialect.delimiter == ";" and config.rules.decimal == ","
    assert config.tables["transactions"].columns == {
        "customer_id": "Kunde",
        "order_ts": "Datum",
        "order_id": "Rechnung",
        "quantity": "Menge",
        "unit_price": "Preis",
    }
    assert config.rules.date_formats == {"order_ts": "%d/%m/%Y %H:%M"}
    assert config.rules.cancellation_prefix == "CR"
    text = path.read_text()
    assert "# high:" in text and "# low:" in text  # every guess is commented
    assert not list(path.parent.glob(".*.tmp"))  # written atomically
    out = capsys.readouterr().out
    assert "customers: 3; orders: 4" in out
    command = "dvc exp run -S data.source=rechnungen_2024 -S 'data.input=raw/Rechnungen 2024.csv'"
    assert command in out


def test_an_existing_config_is_kept_without_force(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(project / "raw" / "orders.csv", ORDERS)
    target = _write(project / "configs" / "sources" / "orders.yaml", "# mine\n")
    assert main(["inspect", "raw/orders.csv"]) == 2
    assert "already exists; --force" in capsys.readouterr().err
    assert target.read_text() == "# mine\n"
    assert main(["inspect", "raw/orders.csv", "--force"]) == 0
    assert "# mine" not in target.read_text()


def test_name_and_out(project: Path) -> None:
    _write(project / "raw" / "orders.csv", ORDERS)
    assert main(["inspect", "raw/orders.csv", "--name", "Bad-Name"]) == 3
    assert main(["inspect", "raw/orders.csv", "--name", "shop", "--out", "mine.yaml"]) == 0
    assert yaml.safe_load((project / "mine.yaml").read_text())["name"] == "shop"
    assert main(["inspect", "raw/orders.csv", "--out", "raw/orders.csv", "--force"]) == 2


def test_a_missing_role_is_one_line_naming_it_and_the_header(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # customers named, not numbered (blanks: no id), under a header no synonym knows
    text = ORDERS.replace("Kunde", "Wer").replace("K1", "Anna Roth").replace("K2", "Jo Bauer")
    _write(project / "raw" / "orders.csv", text.replace("K3", "Max Vogel"))
    assert main(["inspect", "raw/orders.csv"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "(customer_id)" in err and "'Wer'" in err and "--column customer_id=NAME" in err
    assert not (project / "configs").exists()
    assert main(["inspect", "raw/orders.csv", "--column", "customer_id=Wer"]) == 0
    config = load_source_config(project / "configs" / "sources" / "orders.yaml")
    assert config.tables["transactions"].columns["customer_id"] == "Wer"


def test_integers_beside_a_unit_price_are_the_quantity(project: Path) -> None:
    # "Stueckzahl" is no known quantity header; its integers multiply the named price
    _write(project / "raw" / "orders.csv", ORDERS.replace("Menge", "Stueckzahl"))
    assert main(["inspect", "raw/orders.csv"]) == 0
    config = load_source_config(project / "configs" / "sources" / "orders.yaml")
    assert config.tables["transactions"].columns["quantity"] == "Stueckzahl"
    assert "amount" not in config.tables["transactions"].columns


def test_gzip_and_several_tables(project: Path) -> None:
    with gzip.open(project / "raw" / "orders.csv.gz", "wt", encoding="utf-8") as handle:
        handle.write(ORDERS)
    _write(
        project / "raw" / "reviews.csv",
        "Kunde;Datum;Typ;Sterne\nK1;05/01/2024 10:00;review;4\nK2;16/01/2024 12:00;nps;9\n"
        "K3;21/02/2024 09:00;complaint;\n",
    )
    assert main(["inspect", "raw/orders.csv.gz", "raw/reviews.csv"]) == 0
    config = load_source_config(project / "configs" / "sources" / "orders.yaml")
    assert config.tables["transactions"].files == ("orders.csv.gz",)
    assert config.tables["feedback"].columns == {
        "customer_id": "Kunde",
        "feedback_ts": "Datum",
        "kind": "Typ",
        "score": "Sterne",
    }


@pytest.mark.reliability("files: UTF-16/UTF-32 with a BOM (inspect)")
@pytest.mark.parametrize("codec", ["utf-16", "utf-32"])
def test_utf16_and_utf32_with_a_bom_are_inspected_and_cleaned(
    project: Path, capsys: pytest.CaptureFixture[str], codec: str
) -> None:
    (project / "raw" / "orders.csv").write_bytes(ORDERS.replace("\n", "\r\n").encode(codec))
    assert main(["inspect", "raw/orders.csv"]) == 0
    assert "6 transaction lines" in capsys.readouterr().out
    path = project / "configs" / "sources" / "orders.yaml"
    config = load_source_config(path)
    assert config.dialect.delimiter == ";" and config.dialect.encoding == "utf-8"
    assert "byte-order mark" in path.read_text()
    params = project / "params.yaml"
    params.write_text(yaml.safe_dump({"clean": {"as_of": "2025-01-01T00:00:00Z"}}))
    args = ["clean", "--params", str(params), "--source-config", str(path)]
    assert main([*args, "--input", "raw/orders.csv", "--out", "clean"]) == 0
    manifest = yaml.safe_load((project / "clean" / "manifest.json").read_text())
    assert manifest["rows_read"] == 6 == manifest["accepted"] + manifest["rejected"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (ORDERS.encode("utf-16-le"), "looks like UTF-16 text (UTF-16LE) without a byte-order"),
        (ORDERS.split("\n", 1)[1].encode(), "the first line looks like data"),
        (b"", "input file is empty"),
        (b"just one column\nvalue\n", "no delimiter splits"),
    ],
)
def test_unreadable_files_are_one_line(
    project: Path, capsys: pytest.CaptureFixture[str], data: bytes, message: str
) -> None:
    (project / "raw" / "export.csv").write_bytes(data)
    assert main(["inspect", "raw/export.csv"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (project / "configs").exists()


def test_an_undecidable_day_month_order_is_a_warning(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # no day above 12, and both readings jump back and forth in time
    days = ["03/04/2024", "04/03/2024"] * 5
    rows = "".join(f"C{i % 3};{day};{i}.50\n" for i, day in enumerate(days))
    _write(project / "raw" / "log.csv", "customer;date;amount\n" + rows)
    assert main(["inspect", "raw/log.csv"]) == 0
    out = capsys.readouterr().out
    assert "warning: raw/log.csv: date:" in out and "CHECK the day/month order" in out


@pytest.mark.reliability("security: --out or --input paths (inspect)")
def test_out_never_overwrites_the_export(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    export = _write(project / "raw" / "orders.csv", ORDERS)
    assert main(["inspect", "raw/orders.csv", "--out", "raw/./orders.csv", "--force"]) == 2
    assert "output path is also an input" in capsys.readouterr().err
    assert export.read_text(encoding="utf-8") == ORDERS
