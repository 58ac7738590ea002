"""Atomic writes (files, folders, sets), safe YAML, formula neutralisation, pickle refusal."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pandas as pd
import pytest

from pipeline import io
from pipeline.errors import ConfigError, InputError, ModelError, OutputError
from tests.support.faults import FullDisk


@pytest.mark.reliability("infrastructure: crash in the middle of writing")
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


@pytest.mark.reliability("security: YAML with !!python/object tags")
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


# --- output folders and sets, swapped in whole ---------------------------------------------------


def test_atomic_folder_swaps_the_whole_set(tmp_path: Path) -> None:
    out = tmp_path / "clean"
    with io.atomic_folder(out, ["*.json"]) as folder:  # absent before: DVC deletes its outs
        io.write_json(folder / "a.json", 1)
        io.write_json(folder / "b.json", 2)
        assert not out.exists()  # a reader sees nothing new until the block ends
    with io.atomic_folder(out, ["*.json"]) as folder:
        io.write_json(folder / "a.json", 3)
    assert sorted(p.name for p in out.iterdir()) == ["a.json"]  # no stale file of the old set
    assert io.read_json(out / "a.json") == 3
    assert [p.name for p in tmp_path.iterdir()] == ["clean"]


def test_atomic_folder_failure_leaves_the_old_set(tmp_path: Path) -> None:
    out = tmp_path / "clean"
    with io.atomic_folder(out, ["*.json"]) as folder:
        io.write_json(folder / "a.json", 1)
        io.write_json(folder / "b.json", 2)
    with pytest.raises(RuntimeError), io.atomic_folder(out, ["*.json"]) as folder:
        io.write_json(folder / "a.json", 3)
        raise RuntimeError("killed before b.json")
    assert io.read_json(out / "a.json") == 1 and io.read_json(out / "b.json") == 2
    assert [p.name for p in tmp_path.iterdir()] == ["clean"]


def test_disk_full_is_one_line_naming_the_final_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "features"
    FullDisk(monkeypatch, at="summary.json")
    with pytest.raises(OutputError) as caught, io.atomic_folder(out, ["*"]) as folder:
        io.write_json(folder / "panel.json", 1)
        io.write_json(folder / "summary.json", 2)
    assert caught.value.message == f"no space left on device writing {out / 'summary.json'}"
    assert list(tmp_path.iterdir()) == []
    again = pickle.loads(pickle.dumps(caught.value))  # as it comes back from a worker process
    assert again.message == caught.value.message and again.exit_code == 8


@pytest.mark.reliability("infrastructure: crash in the middle of writing")
def test_a_crash_between_the_two_renames_is_recovered(tmp_path: Path) -> None:
    out = tmp_path / "models"
    with io.atomic_folder(out, ["*.txt"]) as folder:
        io.write_text(folder / "model.txt", "old")
    # the state a kill leaves after the old folder went to the trash, before the new one came
    os.rename(out, tmp_path / ".models.trash-x1")
    (tmp_path / ".models.tmp-x2").mkdir()
    (tmp_path / ".models.tmp-x2" / "model.txt").write_text("new")
    io.recover(out)
    assert (out / "model.txt").read_text() == "old"  # the old complete set is back
    assert [p.name for p in tmp_path.iterdir()] == ["models"]  # stale siblings removed


def test_a_folder_of_other_files_is_never_replaced(tmp_path: Path) -> None:
    (tmp_path / "mine.docx").write_text("someone's work")
    with pytest.raises(InputError, match="mine.docx, which this stage does not write"):
        with io.atomic_folder(tmp_path, ["*.parquet"]):
            pass
    assert (tmp_path / "mine.docx").read_text() == "someone's work"


def test_atomic_files_write_the_whole_set_before_renaming(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scores, manifest = tmp_path / "scores.csv", tmp_path / "scores.csv.manifest.json"
    with io.atomic_files(scores, manifest) as (a, b):
        io.write_text(a, "old")
        io.write_json(b, "old")
    FullDisk(monkeypatch, at="manifest.json")
    with pytest.raises(OutputError, match=f"writing {manifest}$"):
        with io.atomic_files(scores, manifest) as (a, b):
            io.write_text(a, "new")
            io.write_json(b, "new")
    assert scores.read_text() == "old" and io.read_json(manifest) == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == [scores.name, manifest.name]


def test_symlink_loop_is_a_one_line_error(tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(InputError, match="symlink loop"):
        io.resolve_output(tmp_path / "out", [loop])


def test_output_folder_holding_an_input_is_refused(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("{}\n")
    with pytest.raises(InputError, match="output folder holds the input"):
        io.resolve_output(tmp_path, [tmp_path / "params.yaml"])


def test_metrics_are_rounded_to_six_significant_digits() -> None:
    """Another machine's BLAS moves a baseline in the 12th digit: git must not see it."""
    noisy = {"brier": 0.14814913015544717, "alpha": [64.87712860890792, 3], "name": "btyd"}
    other = {"brier": 0.14814913015632025, "alpha": [64.87712859978386, 3], "name": "btyd"}
    assert (
        io.significant(noisy)
        == io.significant(other)
        == {
            "brier": 0.148149,
            "alpha": [64.8771, 3],
            "name": "btyd",
        }
    )
    frame = pd.DataFrame({"lift": [2.4271898653686037, float("nan")], "n": [1, 2]})
    out = io.significant_frame(frame)
    assert out["lift"].iloc[0] == 2.42719 and pd.isna(out["lift"].iloc[1])
    assert out["n"].tolist() == [1, 2]
