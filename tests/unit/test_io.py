"""Atomic writes, safe YAML, formula neutralisation, pickle refusal."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline import io
from pipeline.errors import ConfigError, InputError, ModelError


def test_atomic_write_leaves_no_partial_file_on_crash(tmp_path: Path) -> None:
    target = tmp_path / "out" / "table.parquet"
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_bytes(b"half a file")
            raise RuntimeError("crash in the middle of writing")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []  # the temporary file is gone too


def test_atomic_write_replaces_old_content(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    io.write_json(target, {"b": 1, "a": 2})
    io.write_json(target, {"a": 3})
    assert io.read_json(target) == {"a": 3}
    assert target.read_text().startswith('{\n  "a": 3')


def test_parquet_round_trip(tmp_path: Path) -> None:
    frame = pd.DataFrame({"customer_id": pd.array(["1", "2"], dtype="string"), "x": [1.5, 2.0]})
    io.write_parquet(tmp_path / "t.parquet", frame)
    pd.testing.assert_frame_equal(io.read_parquet(tmp_path / "t.parquet"), frame)


def test_read_parquet_of_a_text_file_is_one_line_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.parquet"
    bogus.write_text("not parquet")
    with pytest.raises(InputError, match="not a readable Parquet file"):
        io.read_parquet(bogus)


def test_yaml_python_tags_are_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.yaml"
    evil.write_text("x: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        io.read_yaml(evil)


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@", "\t", "\r"])
def test_formula_cells_are_neutralised(prefix: str) -> None:
    frame = pd.DataFrame({"reason": [f"{prefix}HYPERLINK(1)", "fine"], "n": [1, 2]})
    out = io.neutralise_formulas(frame)
    assert out.loc[0, "reason"] == f"'{prefix}HYPERLINK(1)"
    assert out.loc[1, "reason"] == "fine"
    assert frame.loc[0, "reason"] == f"{prefix}HYPERLINK(1)"  # input not mutated


@pytest.mark.parametrize("name", ["model.pkl", "model.joblib", "m.pickle"])
def test_pickle_files_are_refused(name: str) -> None:
    with pytest.raises(ModelError, match="refusing to load a pickle"):
        io.refuse_pickle(name)


def test_output_never_overwrites_an_input(tmp_path: Path) -> None:
    source = tmp_path / "export.csv"
    source.write_text("a\n")
    with pytest.raises(InputError, match="also an input"):
        io.resolve_output(tmp_path / "." / "export.csv", [source])
