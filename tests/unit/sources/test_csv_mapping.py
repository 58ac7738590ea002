"""Reading and column mapping: the independent record counter, the parser, source configs."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import DataParams
from pipeline.errors import ConfigError, InputError
from pipeline.sources.csv_mapping import load_source_config, parse_source_config, read_export
from pipeline.sources.reading import Dialect, detect_format, read_csv_file
from pipeline.sources.record_count import count_csv_records

REPO = Path(__file__).resolve().parents[3]
SOURCES = REPO / "configs" / "sources"

TRICKY = (
    b"a,b,c\r\n"
    b'1,"x, y",3\r\n'  # line 2: quoted delimiter
    b"\r\n"  # line 3: empty, not a record
    b'2,"multi\r\nline",3\r\n'  # lines 4-5: one record
    b'3,"say ""hi""",3\r\n'  # line 6: escaped quotes never toggle
    b"4,5\r\n"  # line 7: ragged
    b'5,"open,6\n'  # line 8: opens a quote that never closes
    b"6,7,8\n"  # line 9: swallowed into record 8
)


@pytest.fixture
def tricky(tmp_path: Path) -> Path:
    path = tmp_path / "tricky.csv"
    path.write_bytes(TRICKY)
    return path


def test_counter_and_parser_agree_on_record_starts(tricky: Path) -> None:
    frame = read_csv_file(tricky, Dialect(), "tricky.csv")
    assert count_csv_records(tricky) == 5 == len(frame.rows) + len(frame.rejects)
    assert frame.rows["line_number"].tolist() == [2, 4, 6]
    # a line break inside quotes is kept as it is in the file, as the csv module keeps it
    assert frame.rows["b"].tolist() == ["x, y", "multi\r\nline", 'say "hi"']
    assert frame.rejects[["line_number", "reason_code"]].values.tolist() == [
        [7, "malformed_row"],
        [8, "malformed_row"],
    ]
    assert frame.rejects["raw"].tolist()[1] == '5,"open,6\n6,7,8'


def test_chunks_give_the_same_frame(tricky: Path) -> None:
    whole = read_csv_file(tricky, Dialect(), "t").rows
    chunked = read_csv_file(tricky, Dialect(), "t", chunk_rows=1).rows
    assert whole.equals(chunked)


def test_formats_are_detected_by_name_and_content(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x\n1\n")
    (tmp_path / "b.bin").write_bytes(b"PAR1....")
    (tmp_path / "c.csv.gz").write_text("not gzip")
    assert detect_format(tmp_path / "a.csv") == "csv"
    assert detect_format(tmp_path / "b.bin") == "parquet"
    with pytest.raises(InputError, match="not gzip-compressed"):
        detect_format(tmp_path / "c.csv.gz")
    with pytest.raises(InputError, match="file not found"):
        detect_format(tmp_path / "missing.csv")


@pytest.mark.parametrize("name", ["synthetic", "online_retail", "csv"])
def test_shipped_source_configs_are_valid(name: str) -> None:
    assert load_source_config(SOURCES / f"{name}.yaml").name == name


def test_source_config_defaults_to_the_source_name() -> None:
    assert DataParams().source_config_path() == Path("configs/sources/synthetic.yaml")
    assert DataParams(source="online_retail").source_config_path() == Path(
        "configs/sources/online_retail.yaml"
    )
    assert DataParams(source="csv", source_config="my.yaml").source_config_path() == Path("my.yaml")


def test_unknown_canonical_name_is_a_config_error() -> None:
    raw = {
        "name": "x",
        "tables": {"transactions": {"files": ["*.csv"], "columns": {"shopper": "c"}}},
    }
    with pytest.raises(ConfigError, match=r"unknown canonical names \['shopper'\]"):
        parse_source_config(raw, "x.yaml")


def test_python_tags_in_a_source_config_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text("name: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ConfigError, match="evil.yaml"):
        load_source_config(path)


def test_a_folder_without_transactions_is_an_error(tmp_path: Path) -> None:
    config = load_source_config(SOURCES / "synthetic.yaml")
    with pytest.raises(InputError, match="no transactions file"):
        read_export(config, [tmp_path])


def test_first_matching_alternative_name_wins(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text(
        "InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID\n"
        "1,A,1,2010-01-01 00:00:00,1,7\n"
    )
    raw = read_export(load_source_config(SOURCES / "online_retail.yaml"), [path])
    assert list(raw.tables["transactions"].columns) == [
        "source_file",
        "order_id",
        "sku",
        "quantity",
        "order_ts",
        "unit_price",
        "customer_id",
        "line_number",
        "raw",
    ]


def test_one_source_column_can_fill_several_canonical_fields(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("customer,date,amount\n7,2010-01-01,12.5\n7,2010-01-03,3\n")
    raw = {
        "name": "log",
        "tables": {
            "transactions": {
                "files": ["*.csv"],
                "columns": {
                    "customer_id": "customer",
                    "order_id": "date",  # one line = one purchase: the date names the order
                    "order_ts": "date",
                    "amount": "amount",
                },
            }
        },
    }
    table = read_export(parse_source_config(raw, "log.yaml"), [path]).tables["transactions"]
    assert table["order_id"].tolist() == table["order_ts"].tolist() == ["2010-01-01", "2010-01-03"]


def test_order_id_is_required_only_when_the_config_maps_it(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("customer,date,amount\n7,2010-01-01,12.5\n")
    columns = {"customer_id": "customer", "order_ts": "date", "amount": "amount"}

    def config(mapping: dict[str, str]):
        raw = {"name": "log", "tables": {"transactions": {"files": ["*.csv"], "columns": mapping}}}
        return parse_source_config(raw, "log.yaml")

    table = read_export(config(columns), [path]).tables["transactions"]
    assert "order_id" not in table.columns  # a purchase log: cleaning derives the orders
    with pytest.raises(InputError, match=r"required columns missing: expected \['Invoice'\]"):
        read_export(config({**columns, "order_id": "Invoice"}), [path])


def test_two_folders_with_the_same_file_names_stay_apart(tmp_path: Path) -> None:
    text = (
        "InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID\n"
        "1,A,1,2010-01-01 00:00:00,1,7\n"
    )
    for part in ("a", "b"):
        (tmp_path / part).mkdir()
        (tmp_path / part / "export.csv").write_text(text)
    config = load_source_config(SOURCES / "online_retail.yaml")
    raw = read_export(config, [tmp_path / "a", tmp_path / "b"])
    assert [info.source_file for info in raw.files] == [
        str(tmp_path / "a" / "export.csv"),
        str(tmp_path / "b" / "export.csv"),
    ]
