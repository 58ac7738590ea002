"""Dates on the command line and in params are ISO 8601 only (issue 13.2)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from pipeline.cli import main
from pipeline.dates import NotIsoDate, iso_date, iso_instant

REFUSED = [
    "01/10/2024",  # day-first or month-first: never guessed
    "10.01.2024",
    "2024/10/01",
    "2024-13-45",  # the right shape, not a calendar date
    "2024-02-30",
    "20241001",
    "2024-10-01T06:00",  # a time without its zone: whose clock?
    "1 Oct 2024",
    "",
    "latest-ish",
    1700000000,  # a Unix time
    17.5,
    None,
]


@pytest.mark.parametrize("value", REFUSED)
def test_anything_but_iso_is_refused(value: object) -> None:
    with pytest.raises(NotIsoDate, match="not an ISO 8601 date"):
        iso_instant(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-10-01", "2024-10-01T00:00:00+00:00"),
        (" 2024-10-01 ", "2024-10-01T00:00:00+00:00"),
        ("2024-10-01T06:00:00Z", "2024-10-01T06:00:00+00:00"),
        ("2024-10-01 06:00+02:00", "2024-10-01T04:00:00+00:00"),
        ("2024-10-01T06:00:00.250-0500", "2024-10-01T11:00:00.250000+00:00"),
        (dt.date(2024, 10, 1), "2024-10-01T00:00:00+00:00"),
        (dt.datetime(2024, 10, 1, 6, tzinfo=dt.UTC), "2024-10-01T06:00:00+00:00"),
    ],
)
def test_iso_dates_and_zoned_times_are_utc_instants(value: object, expected: str) -> None:
    assert iso_instant(value).isoformat() == expected


def test_a_naive_datetime_object_is_refused() -> None:
    with pytest.raises(NotIsoDate):
        iso_instant(dt.datetime(2024, 10, 1, 6))


@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2200, 12, 31)))
def test_every_calendar_date_round_trips(day: dt.date) -> None:
    assert iso_date(day.isoformat()) == day
    assert iso_instant(day.isoformat()) == pd.Timestamp(day, tz="UTC")


def test_a_date_param_is_a_date_not_a_time() -> None:
    with pytest.raises(NotIsoDate):
        iso_date("2024-10-01T00:00:00Z")


def _one_error_line(err: str, prefix: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.reliability("infrastructure: dates given on the command line")
@pytest.mark.parametrize("value", ["01/10/2024", "10.01.2024", "2024-13-45"])
@pytest.mark.parametrize("command", ["score", "features"])
def test_a_loose_date_option_is_a_usage_error(
    command: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("{}\n")
    args = {
        "score": ["score", "--model", "m", "--input", str(tmp_path / "in")],
        "features": ["features", "--clean", str(tmp_path / "clean")],
    }[command]
    out = tmp_path / "out"
    code = main([*args, "--out", str(out), "--params", str(params), "--as-of", value])
    assert code == 2
    line = _one_error_line(capsys.readouterr().err, "Error:")
    assert "--as-of" in line and repr(value) in line
    assert not out.exists()


@pytest.mark.reliability("infrastructure: dates given in params")
@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("clean", "as_of", "01/10/2024"),
        ("clean", "as_of", 1700000000),
        ("clean", "as_of", "2024-06-01T00:00:00"),
        ("features", "last_cutoff", "10.01.2024"),
        ("features", "data_end", "2024-13-45"),
        ("generate", "start", "2023/01/01"),
    ],
)
def test_a_loose_date_param_is_a_config_error(
    section: str, key: str, value: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({section: {key: value}}))
    out = tmp_path / "out"
    code = main(["clean", "--params", str(params), "--input", str(tmp_path), "--out", str(out)])
    assert code == 3
    line = _one_error_line(capsys.readouterr().err, "error:")
    assert f"{section}.{key}: not an ISO 8601 date" in line
    assert not out.exists()
