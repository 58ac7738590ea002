"""The real `loyalty score` command against a real (small) pipeline run.

The module fixture runs generate -> clean -> features -> train (churn, repurchase and value,
registered in a temporary SQLite MLflow store) once; the tests then score the *raw* export and
compare with what training computed. Train/serve parity means max abs difference 0.0, not "close".
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipeline import io
from pipeline.business import ReasonCut
from pipeline.cli import main
from pipeline.features.partition import customer_hash
from tests.support.faults import assert_disk_full_keeps_old_set, unreadable

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SOURCE = str(REPO / "configs" / "sources" / "synthetic.yaml")
DICTIONARY = str(REPO / "configs" / "features.yaml")


@dataclass(frozen=True)
class World:
    root: Path
    params: Path
    test_cutoff: str


def _run(*args: str) -> int:
    return main([*args])


def build_world(root: Path, n_customers: int = 600) -> World:
    """Generate, clean, featurise and train both models in ``root`` (small and fast)."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"]["source_config"] = SOURCE
    params["generate"]["n_customers"] = n_customers
    params["clean"]["as_of"] = "2025-06-01T00:00:00Z"  # not "tomorrow": stable across midnight
    params["train"]["num_boost_round"] = 150
    params["train"]["early_stopping_rounds"] = 20
    params["train"]["quality_gate"] = {"max_auc": 1.0, "min_auc_margin_over_recency": -1.0}
    params["mlflow"]["tracking_uri"] = f"sqlite:///{root / 'mlflow.db'}"
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    p = ["--params", str(path)]
    assert _run("generate", *p, "--out", str(root / "raw")) == 0
    assert _run("clean", *p, "--input", str(root / "raw"), "--out", str(root / "clean")) == 0
    assert (
        _run(
            "features",
            *p,
            "--clean",
            str(root / "clean"),
            "--out",
            str(root / "features"),
            "--dictionary",
            DICTIONARY,
        )
        == 0
    )
    for target in ("churn", "repurchase", "value"):
        assert (
            _run(
                "train",
                *p,
                "--target",
                target,
                "--features",
                str(root / "features"),
                "--out",
                str(root / "models" / target),
                "--metrics",
                str(root / "metrics" / f"{target}.json"),
                "--plots",
                str(root / "plots" / target),
                "--dictionary",
                DICTIONARY,
            )
            == 0
        )
    features = io.read_json(root / "models" / "churn" / "features.json")
    return World(root, path, features["cutoffs"]["test"][-1])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        yield build_world(tmp_path_factory.mktemp("score"))


def score_args(
    world: World,
    out: Path,
    *,
    as_of: str | None = None,
    models: tuple[str, ...] | None = None,
    inputs: tuple[Path, ...] | None = None,
) -> list[str]:
    """``loyalty score`` arguments on the world's export: test cutoff, both models by default."""
    models = models or (
        str(world.root / "models" / "churn"),
        str(world.root / "models" / "repurchase"),
    )
    args = [
        "score",
        "--params",
        str(world.params),
        "--source",
        SOURCE,
        "--features-config",
        DICTIONARY,
        "--as-of",
        as_of or world.test_cutoff,
        "--out",
        str(out),
        "--no-progress",
    ]
    for path in inputs or (world.root / "raw",):
        args += ["--input", str(path)]
    for model in models:
        args += ["--model", model]
    return args


def score(
    world: World,
    out: Path,
    *extra: str,
    as_of: str | None = None,
    models: tuple[str, ...] | None = None,
    inputs: tuple[Path, ...] | None = None,
) -> int:
    return _run(*score_args(world, out, as_of=as_of, models=models, inputs=inputs), *extra)


def assert_parity(world: World, scores: pd.DataFrame) -> None:
    """Same customers and identical probabilities as the training stage's test predictions."""
    for target in ("churn", "repurchase"):
        trained = io.read_parquet(world.root / "models" / target / "test_predictions.parquet")
        merged = trained.merge(scores, on="customer_id", how="outer", indicator=True)
        assert set(merged["_merge"]) == {"both"}, f"{target}: customer sets differ"
        diff = (merged["probability"] - merged[f"{target}_probability"]).abs().max()
        assert diff == 0.0, f"{target}: max abs difference {diff}"


def test_parity_with_training_and_the_output_contract(world: World, tmp_path: Path) -> None:
    out = tmp_path / "scores.parquet"
    assert score(world, out, "--partitions", "3", "--workers", "2") == 0
    scores = io.read_parquet(out)
    assert_parity(world, scores)
    assert list(scores.columns) == [
        "customer_id",
        "as_of",
        "churn_probability",
        "repurchase_probability",
        "churn_risk_band",
        "loyalty_tier",
        "value_tier",
        "rfm_segment",
        "value_at_risk",
        "high_value",
        "reason_1",
        "reason_2",
        "reason_3",
        "action_concept",
        "action_reason",
        "suggested_action",
        "churn_model",
        "churn_model_version",
        "repurchase_model",
        "repurchase_model_version",
    ]
    assert scores["customer_id"].is_unique
    assert (scores["as_of"] == pd.Timestamp(world.test_cutoff)).all()
    manifest = io.read_json(out.with_name("scores.parquet.manifest.json"))
    # reasons for customers at or above the churn model's shipped cut of 20%: at the test
    # cutoff the scored population is its reference, so exactly round(0.2 x n) are chosen
    # (ties of the calibrated probability broken by raw margin, then customer hash)
    trained = io.read_parquet(world.root / "models" / "churn" / "test_predictions.parquet")
    cut = manifest["reasons_cut"]
    chosen = ReasonCut(cut["probability"], cut["raw_margin"], cut["customer_hash"]).selects(
        trained["probability"], trained["raw_margin"], customer_hash(trained["customer_id"])
    )
    assert chosen.sum() == cut["reference_customers"] == (2 * 200 * len(scores) + 1000) // 2000
    chosen_ids = set(trained.loc[chosen, "customer_id"])
    has_reason = scores["reason_1"].notna()
    assert set(scores.loc[has_reason, "customer_id"]) <= chosen_ids
    # a chosen customer without one risk-raising fact to tell is rare
    assert has_reason.sum() >= 0.95 * len(chosen_ids)
    assert (scores.loc[has_reason, "churn_probability"] >= manifest["reasons_threshold"]).all()
    assert manifest["customers_with_reasons"] == has_reason.sum()
    # without a value model nobody is explained for their value at risk
    assert manifest["reasons_min_value_at_risk"] is None
    # everyone explained has an action (a lever's, or the fallback); nobody else has one
    assert scores["suggested_action"].notna().eq(has_reason).all()
    assert scores["rfm_segment"].notna().all()
    # no value model scored: its labels are empty, never a made-up value
    assert scores["value_tier"].isna().all() and scores["value_at_risk"].isna().all()
    assert manifest["expected_value"] is None
    assert manifest["customers_scored"] == len(scores)
    assert manifest["rows_in"] == manifest["rows_accepted"] + manifest["rows_rejected"] > 0


def test_value_scores_equal_training_and_give_value_at_risk(world: World, tmp_path: Path) -> None:
    """At the value target's own test cutoff, expected_value is the training prediction."""
    value = world.root / "models" / "value"
    trained = io.read_parquet(value / "test_predictions.parquet")
    cutoff = io.read_json(value / "features.json")["cutoffs"]["test"][-1]
    out = tmp_path / "scores.parquet"
    models = (str(world.root / "models" / "churn"), str(value))
    assert score(world, out, as_of=cutoff, models=models) == 0
    scores = io.read_parquet(out)
    merged = trained.merge(scores, on="customer_id", how="outer", indicator=True)
    assert (merged["_merge"] == "both").all()
    assert (merged["prediction"] - merged["expected_value"]).abs().max() == 0.0
    expected_risk = merged["churn_probability"] * merged["expected_value"]
    assert (merged["value_at_risk"] - expected_risk).abs().max() < 1e-9
    assert set(scores["value_tier"].dropna()) <= {"high", "medium", "low"}
    manifest = io.read_json(out.with_name("scores.parquet.manifest.json"))
    horizon = io.read_json(value / "features.json")["horizon_days"]
    assert manifest["expected_value"]["meaning"] == f"expected spend in the next {horizon} days"
    # reference lines: on the reference population itself about 20% are high value
    assert 0.15 <= scores["high_value"].mean() <= 0.25


def test_partition_count_changes_nothing(world: World, tmp_path: Path) -> None:
    assert score(world, tmp_path / "one.parquet", "--partitions", "1", "--workers", "1") == 0
    assert score(world, tmp_path / "five.parquet", "--partitions", "5", "--workers", "1") == 0
    one = io.read_parquet(tmp_path / "one.parquet").sort_values("customer_id", ignore_index=True)
    five = io.read_parquet(tmp_path / "five.parquet").sort_values("customer_id", ignore_index=True)
    pd.testing.assert_frame_equal(one, five, check_exact=True)


def test_a_rerun_writes_the_same_bytes_unless_timings_are_asked_for(
    world: World, tmp_path: Path
) -> None:
    # The DVC score stage's output is hashed into dvc.lock: same inputs, same bytes.
    first, second = tmp_path / "a" / "scores.parquet", tmp_path / "b" / "scores.parquet"
    assert score(world, first) == 0 and score(world, second) == 0
    manifest = first.with_name("scores.parquet.manifest.json")
    assert first.read_bytes() == second.read_bytes()
    assert manifest.read_bytes() == second.with_name(manifest.name).read_bytes()
    assert "seconds" not in manifest.read_text()
    timed = tmp_path / "c" / "scores.parquet"
    assert score(world, timed, "--timings") == 0
    report = io.read_json(timed.with_name("scores.parquet.manifest.json"))
    assert set(report["timings"]) >= {"split_seconds", "map_seconds"}
    assert all("seconds_score" in part for part in report["partitions"])


def test_registry_alias_gives_the_same_scores(world: World, tmp_path: Path) -> None:
    out = tmp_path / "scores.parquet"
    models = ("models:/loyalty-churn@champion", "models:/loyalty-repurchase@champion")
    assert score(world, out, "--workers", "1", models=models) == 0
    scores = io.read_parquet(out)
    assert_parity(world, scores)
    assert set(scores["churn_model"]) == {"loyalty-churn"}
    assert set(scores["churn_model_version"]) == {"loyalty-churn v1 (champion)"}
    assert set(scores["repurchase_model_version"]) == {"loyalty-repurchase v1 (champion)"}


def test_missing_alias_is_one_line(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "scores.parquet"
    code = score(world, out, models=("models:/loyalty-churn@nope",))
    assert code != 0
    assert "no version of loyalty-churn has alias nope" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.reliability("scoring input with columns reordered")
def test_reordered_input_columns_give_identical_scores(world: World, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(world.root / "raw", raw)
    for name in ("transactions.csv", "feedback.csv", "customers.csv"):
        with open(world.root / "raw" / name, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        with open(raw / name, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([row[::-1] for row in rows])
    out = tmp_path / "scores.parquet"
    assert score(world, out, "--workers", "1", inputs=(raw,)) == 0
    assert_parity(world, io.read_parquet(out))


@pytest.mark.reliability("--out or --input paths")
def test_output_never_overwrites_an_input(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    target = world.root / "raw" / "transactions.csv"
    before = io.file_sha256(target)
    assert score(world, target) != 0  # inside the input folder
    assert "output path is inside input folder" in capsys.readouterr().err
    assert score(world, target, inputs=(target,)) != 0  # the input file itself
    assert "output path is also an input" in capsys.readouterr().err
    assert io.file_sha256(target) == before


@pytest.mark.reliability("infrastructure: disk full while a stage writes its folder (score)")
@pytest.mark.parametrize(
    ("at", "written_first"),
    [
        # the scores written, then the disk fills: not new scores next to the old manifest
        ("manifest.json", "scores.parquet"),
        # a partition's scratch rows, after its clean tables (named: the output they are for)
        ("part-", "orders.parquet"),
    ],
)
def test_disk_full_leaves_the_previous_scores_and_manifest(
    world: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    at: str,
    written_first: str,
) -> None:
    folder = tmp_path / "scores"
    out = folder / "scores.parquet"
    args = ("--workers", "1", "--partitions", "2")
    assert score(world, out, *args) == 0

    def rerun() -> tuple[int, str]:
        capsys.readouterr()
        return score(world, out, *args, as_of="latest"), capsys.readouterr().err

    manifest = folder / "scores.parquet.manifest.json"
    named = manifest if at == "manifest.json" else out
    assert_disk_full_keeps_old_set(
        monkeypatch, rerun, [out, manifest], at=at, written_first=written_first, named=named
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores"]


@pytest.mark.reliability("files: a symlink loop, a directory, an unreadable file as input (score)")
@pytest.mark.parametrize("kind", ["symlink loop", "directory", "unreadable"])
def test_unusable_input_is_one_line(
    world: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    kind: str,
) -> None:
    path = tmp_path / "export.csv"
    if kind == "symlink loop":
        path.symlink_to(path)
        expected = "symlink loop"
    elif kind == "directory":
        path.mkdir()
        expected = "no transactions file"
    else:
        shutil.copy(world.root / "raw" / "transactions.csv", path)
        unreadable(path, monkeypatch)
        expected = "cannot read it (Permission denied)"
    out = tmp_path / "scores.parquet"
    capsys.readouterr()
    assert score(world, out, "--workers", "1", inputs=(path,)) != 0
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "export.csv" in errors[0] and expected in errors[0], err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.csv"]


@pytest.mark.reliability("text starting with = + - @ tab or CR")
def test_csv_output_neutralises_formulas(world: World, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(world.root / "raw", raw)
    # a customer whose id a spreadsheet would run as a formula, with two orders before the cutoff
    with open(raw / "transactions.csv", "a", encoding="utf-8") as handle:
        for invoice, day in (("X1", "2024-08-01"), ("X2", "2024-09-01")):
            handle.write(f"{invoice},SKU1,thing,1,10.0,{day} 10:00:00,=1+1,web,0,{day},{day}\n")
    out = tmp_path / "scores.csv"
    assert score(world, out, "--workers", "1", "--format", "csv", inputs=(raw,)) == 0
    text = out.read_text(encoding="utf-8")
    assert "\n'=1+1," in text
    assert "\n=1+1," not in text


def test_as_of_latest_is_the_features_stage_scoring_snapshot(world: World, tmp_path: Path) -> None:
    """The DVC `score` stage's call: as-of and customers of features' scoring.parquet."""
    out = tmp_path / "latest.parquet"
    churn = (str(world.root / "models" / "churn"),)
    assert score(world, out, "--workers", "1", as_of="latest", models=churn) == 0
    snapshot = io.read_parquet(world.root / "features" / "scoring.parquet")
    scores = io.read_parquet(out)
    assert sorted(scores["customer_id"]) == sorted(snapshot["customer_id"])
    assert (scores["as_of"] == snapshot["cutoff"].iloc[0]).all()
    assert "repurchase_probability" not in scores.columns  # one model given: churn only
    assert scores["loyalty_tier"].isna().all()


def test_scoring_quarantines_what_clean_quarantines(world: World, tmp_path: Path) -> None:
    """With clean.as_of left null both use the export's stated extract time for future_date.

    Regression: the scorer used "tomorrow", kept the simulation's 2025-dated lines and so
    summed them into their invoices: five customers' churn probabilities differed from the
    features stage's scoring snapshot at the same as-of.
    """
    params = yaml.safe_load(world.params.read_text())
    params["clean"]["as_of"] = None
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    assert (
        _run(
            "clean",
            "--params",
            str(path),
            "--input",
            str(world.root / "raw"),
            "--out",
            str(tmp_path / "clean"),
        )
        == 0
    )
    out = tmp_path / "scores.parquet"
    assert (
        _run(
            "score",
            "--params",
            str(path),
            "--source",
            SOURCE,
            "--features-config",
            DICTIONARY,
            "--as-of",
            world.test_cutoff,
            "--input",
            str(world.root / "raw"),
            "--out",
            str(out),
            "--model",
            str(world.root / "models" / "churn"),
            "--no-progress",
            "--workers",
            "1",
        )
        == 0
    )
    cleaned = io.read_json(tmp_path / "clean" / "manifest.json")["rejected_by_reason"]
    scored = io.read_json(out.with_name("scores.parquet.manifest.json"))["rejected_by_reason"]
    assert cleaned.get("future_date", 0) > 0
    assert scored == cleaned


def _keep_customers(src: Path, dst: Path, keep: set[str]) -> None:
    """Copy an export keeping only the lines of ``keep`` (ids normalised as clean does)."""
    from pipeline.cleaning.parsing import normalise_id

    dst.mkdir(parents=True)
    for path in sorted(src.iterdir()):
        if path.suffix != ".csv":
            continue
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        column = rows[0].index("customer_id")
        kept = [rows[0]] + [r for r in rows[1:] if normalise_id(r[column]) in keep]
        with open(dst / path.name, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle, lineterminator="\n").writerows(kept)
    for path in sorted(src.iterdir()):  # the extract time the export states
        if path.suffix != ".csv" and path.is_file():
            shutil.copy(path, dst / path.name)


def test_scoring_a_subset_of_customers_changes_none_of_their_rows(
    world: World, tmp_path: Path
) -> None:
    """Nothing a customer gets depends on who else is scored (DESIGN 3.7): no batch ranks."""
    everyone = tmp_path / "all.parquet"
    assert score(world, everyone, "--workers", "1") == 0
    full = io.read_parquet(everyone).set_index("customer_id")
    ids = sorted(full.index)
    keep = set(ids[::3])  # a third of the customers, and none of the others' lines
    _keep_customers(world.root / "raw", tmp_path / "subset", keep)
    part = tmp_path / "part.parquet"
    assert score(world, part, "--workers", "1", inputs=(tmp_path / "subset",)) == 0
    some = io.read_parquet(part).set_index("customer_id")
    assert set(some.index) == keep
    pd.testing.assert_frame_equal(some, full.loc[some.index], check_exact=True)


@pytest.mark.reliability("infrastructure: --as-of outside the data's span")
@pytest.mark.parametrize(
    ("as_of", "fragment"),
    [("2025-03-01", "after the end of the data"), ("2022-06-01", "before the first order")],
)
def test_as_of_outside_the_data_is_one_line_and_writes_nothing(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str], as_of: str, fragment: str
) -> None:
    out = tmp_path / "scores.parquet"
    capsys.readouterr()
    assert score(world, out, as_of=as_of) == 4
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and fragment in errors[0] and "--allow-outside-data" in errors[0], err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no scores, no manifest, no scratch


def test_as_of_outside_the_data_with_the_flag_scores_and_warns(
    world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "scores.parquet"
    assert score(world, out, "--allow-outside-data", as_of="2025-03-01") == 0
    assert "after the end of the data" in caplog.text
    assert (io.read_parquet(out)["as_of"] == pd.Timestamp("2025-03-01", tz="UTC")).all()


@pytest.mark.reliability("rows: a date format that matches nothing (100% rejects, score)")
def test_a_mapping_that_rejects_most_lines_fails_score_with_the_reasons(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = yaml.safe_load(Path(SOURCE).read_text())
    config["rules"]["date_formats"]["order_ts"] = "%d/%m/%Y %H:%M:%S"
    source = tmp_path / "config" / "wrong_format.yaml"
    source.parent.mkdir()
    source.write_text(yaml.safe_dump(config))
    args = score_args(world, tmp_path / "out" / "scores.parquet")
    args[args.index("--source") + 1] = str(source)
    capsys.readouterr()
    assert _run(*args) == 4
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "score input:" in errors[0] and "bad_date" in errors[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# --- faults: a locked store, names that would be paths, corrupted models (issue 13) ----------


def one_error_line(err: str) -> str:
    """The one ``error:`` line of a failed command: the last line, no traceback before it."""
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == [err.strip().splitlines()[-1]], err
    return errors[0]


def tree(root: Path) -> set[str]:
    """Every path under ``root``, relative to it."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def store_copy(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **mlflow: object
) -> tuple[Path, Path]:
    """A copy of the world's registry (same artefacts), and params and environment that use it.

    (``mlflow.set_tracking_uri`` in an earlier in-process run set ``MLFLOW_TRACKING_URI``.)
    """
    import sqlite3

    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir(parents=True)
    src, dst = sqlite3.connect(world.root / "mlflow.db"), sqlite3.connect(db)
    with dst:
        src.backup(dst)
    src.close()
    dst.close()
    params = yaml.safe_load(world.params.read_text())
    params["mlflow"].update(tracking_uri=f"sqlite:///{db}", **mlflow)
    path = tmp_path / "store" / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    return db, path


@pytest.mark.reliability("infrastructure: SQLite store locked by another writer")
def test_locked_registry_waits_its_timeout_then_says_locked(
    world: World,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time

    from tests.support.sqlite_lock import locked

    db, params = store_copy(world, tmp_path, monkeypatch, lock_timeout_s=1)
    champion = ("models:/loyalty-churn@champion",)
    out = tmp_path / "locked.parquet"
    args = score_args(world, out, models=champion)
    args[args.index("--params") + 1] = str(params)
    # first, before this process opens the copy: a lock in rollback-journal mode stops readers
    # too (once MLflow holds pooled connections the store stays in WAL mode)
    with locked(db, journal_mode="delete"):
        started = time.perf_counter()
        code = _run(*args, "--workers", "1")
        elapsed = time.perf_counter() - started
    assert code == 7
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: tracking store sqlite:///{db} is locked by another writer")
    assert "waited 1 s; mlflow.lock_timeout_s" in line
    assert elapsed < 60  # a sanity bound: the wait is 1 s, not MLflow's 20 s and retries
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]  # no output, no scratch
    with locked(db):  # WAL: another writer does not stop a reader
        assert _run(*args, "--workers", "1") == 0
    assert out.exists()


#: Names that must never become part of a path (a deep traversal climbs out of the scratch).
BAD_NAMES = ["../../../../x", "/tmp/x", "", "a\x00b", "x" * 1000, ".."]


@pytest.mark.reliability("security: names read from a registry or a file")
@pytest.mark.parametrize("name", BAD_NAMES, ids=range(len(BAD_NAMES)))
def test_a_bad_name_in_a_model_uri_is_one_line(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    out = tmp_path / "deep" / "er" / "scores.parquet"
    before = tree(tmp_path)
    for uri in (f"models:/{name}@champion", f"models:/loyalty-churn@{name}"):
        assert score(world, out, models=(uri,)) == 5
        assert "not a valid name" in one_error_line(capsys.readouterr().err)
    assert tree(tmp_path) - before <= {"deep", "deep/er"}


@pytest.mark.reliability("security: names read from a registry or a file")
def test_a_registry_model_naming_a_bad_target_writes_nothing(
    world: World,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each version's features.json names a bad target; it is refused before any path."""
    from types import SimpleNamespace

    from pipeline import tracking
    from pipeline.config import MlflowParams

    db, params = store_copy(world, tmp_path / "registry", monkeypatch)
    from pipeline.modeling.artifacts import load_predictor

    panel = io.read_parquet(world.root / "features" / "panel.parquet")
    test_rows = panel.loc[panel["split"] == "test"].head(20)
    rows = load_predictor(world.root / "models" / "churn").derive(test_rows)  # with BTYD
    for name in BAD_NAMES:
        folder = tmp_path / "registry" / "evil"
        shutil.copytree(world.root / "models" / "churn", folder, dirs_exist_ok=True)
        features = io.read_json(folder / "features.json")
        features["target"] = name
        io.write_json(folder / "features.json", features)
        result = SimpleNamespace(
            target="evil",
            metrics={"test_cutoff": world.test_cutoff, "model": {"roc_auc": 0.5}},
            trials=[],
            features=features,
            test_frame=rows[[f["name"] for f in features["features"]]],
        )
        logged = tracking.log_training(
            result=result,
            params={},
            mlflow_params=MlflowParams(tracking_uri=f"sqlite:///{db}"),
            model_dir=folder,
            plots_dir=None,
        )
        assert logged is not None
    out = tmp_path / "deep" / "er" / "scores.parquet"
    before = tree(tmp_path)
    for version in range(1, len(BAD_NAMES) + 1):
        args = score_args(world, out, models=(f"models:/loyalty-evil/{version}",))
        args[args.index("--params") + 1] = str(params)
        assert _run(*args) == 5
        line = one_error_line(capsys.readouterr().err)
        assert "features.json target" in line and "not a valid name" in line
    assert tree(tmp_path) - before <= {"deep", "deep/er"}


def _damaged(text: str) -> str:
    import re

    return re.sub(r"num_class=\d+", "num_class=2000000000", text)


#: A damaged model folder: the file changed, what it becomes, what the one line says.
CORRUPTIONS = {
    "truncated": ("model.txt", lambda b: b[: len(b) // 3], "truncated"),
    "random_bytes": ("model.txt", lambda b: bytes(range(256)) * 40, "not LightGBM text"),
    "empty": ("model.txt", lambda b: b"", "empty file"),
    "huge_header": ("model.txt", lambda b: _damaged(b.decode()).encode(), "num_class"),
    "features_not_json": ("features.json", lambda b: b[:-20], "invalid JSON"),
    "features_keys_missing": ("features.json", lambda b: b'{"target": "churn"}', "features"),
    "calibration_missing": ("calibration.json", None, "calibration.json not found"),
}


@pytest.mark.reliability("model file from another LightGBM major version, or corrupted")
@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_a_corrupted_model_is_one_line_naming_the_file(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    file, damage, says = CORRUPTIONS[case]
    folder = tmp_path / "model"
    shutil.copytree(world.root / "models" / "churn", folder)
    if damage is None:
        (folder / file).unlink()
    else:
        (folder / file).write_bytes(damage((folder / file).read_bytes()))
    out = tmp_path / "scores.parquet"
    explain_out = tmp_path / "explain"
    explain = [
        "explain",
        "--params",
        str(world.params),
        "--target",
        "churn",
        "--model",
        str(folder),
        "--features",
        str(world.root / "features"),
        "--out",
        str(explain_out),
        "--dictionary",
        DICTIONARY,
    ]
    for run in (lambda: score(world, out, models=(str(folder),)), lambda: _run(*explain)):
        assert run() == 5
        line = one_error_line(capsys.readouterr().err)
        assert line.startswith(f"error: corrupted model {folder}") and says in line
        assert "std::" not in line
    assert not out.exists() and not explain_out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


# --- awkward files: score's split reads what clean reads ----------------------------------------


def _variant(world: World, root: Path, rewrite: object) -> Path:
    """Copy the world's export with ``transactions.csv`` rewritten by ``rewrite(bytes)``."""
    folder = root / "raw"
    shutil.copytree(world.root / "raw", folder)
    path = folder / "transactions.csv"
    path.write_bytes(rewrite(path.read_bytes()))  # type: ignore[operator]
    return folder


def _after_header(lines: bytes) -> object:
    """A rewrite that puts ``lines`` right after the header."""

    def rewrite(data: bytes) -> bytes:
        header, rest = data.split(b"\n", 1)
        return header + b"\n" + lines + rest

    return rewrite


def _params_with(world: World, root: Path, **clean: object) -> Path:
    params = yaml.safe_load(world.params.read_text())
    params["clean"].update(clean)
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _score_and_clean(
    world: World, root: Path, raw: Path, params: Path
) -> tuple[pd.DataFrame, dict]:
    """Score ``raw`` (3 partitions) and clean it; the score manifest must agree with clean's."""
    out = root / "scores.parquet"
    args = score_args(world, out, inputs=(raw,))
    args[args.index("--params") + 1] = str(params)
    assert _run(*args, "--partitions", "3", "--workers", "1") == 0
    manifest = io.read_json(out.with_name("scores.parquet.manifest.json"))
    assert (
        _run("clean", "--params", str(params), "--input", str(raw), "--out", str(root / "c")) == 0
    )
    cleaned = io.read_json(root / "c" / "manifest.json")
    assert manifest["rejected_by_reason"] == cleaned["rejected_by_reason"]
    assert manifest["rows_in"] == cleaned["rows_read"]
    assert manifest["rows_in"] == manifest["rows_accepted"] + manifest["rows_rejected"]  # RECON
    return io.read_parquet(out), manifest


@pytest.fixture(scope="module")
def plain_scores(world: World, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The world's LF, UTF-8 export scored as the variants are (3 partitions, one worker)."""
    out = tmp_path_factory.mktemp("plain") / "scores.parquet"
    assert score(world, out, "--partitions", "3", "--workers", "1") == 0
    return io.read_parquet(out)


def _mixed_line_ends(data: bytes) -> bytes:
    lines = data.split(b"\n")
    ends = (b"\n", b"\r\n", b"\r")
    return b"".join(line + ends[i % 3] for i, line in enumerate(lines[:-1])) + lines[-1]


@pytest.mark.reliability("files: CR, LF and CRLF line ends, mixed in one file (score)")
def test_mixed_line_ends_score_as_the_lf_export(
    world: World, tmp_path: Path, plain_scores: pd.DataFrame
) -> None:
    raw = _variant(world, tmp_path, _mixed_line_ends)
    data = (raw / "transactions.csv").read_bytes()
    assert data.count(b"\r\n") > 1000 and data.count(b"\r") > 2 * data.count(b"\r\n") - 2
    scores, _ = _score_and_clean(world, tmp_path, raw, world.params)
    pd.testing.assert_frame_equal(scores, plain_scores, check_exact=True)


@pytest.mark.reliability("files: one record longer than the record-length limit (score)")
def test_an_over_long_record_is_quarantined_and_changes_no_other_customer(
    world: World, tmp_path: Path, plain_scores: pd.DataFrame
) -> None:
    """A 200 KB line, the limit (params) at 64 KiB: one record_too_long, the rest scored.

    Under the default limit (1 MiB) the line would be a malformed_row: the split and clean_pass
    both follow clean.max_record_bytes.
    """

    long = b"999999,X," + b"9" * (200 << 10) + b",1,1.0\n"
    raw = _variant(world, tmp_path, _after_header(long))
    params = _params_with(world, tmp_path, max_record_bytes=65536)
    scores, manifest = _score_and_clean(world, tmp_path, raw, params)
    assert manifest["rejected_by_reason"]["record_too_long"] == 1
    pd.testing.assert_frame_equal(scores, plain_scores, check_exact=True)


@pytest.mark.reliability("files: UTF-16/UTF-32 with a BOM (score)")
def test_a_utf16_export_scores_as_the_utf8_one(
    world: World, tmp_path: Path, plain_scores: pd.DataFrame
) -> None:
    raw = _variant(world, tmp_path, lambda data: data.decode("utf-8").encode("utf-16"))
    assert (raw / "transactions.csv").read_bytes()[:2] in (b"\xff\xfe", b"\xfe\xff")
    scores, _ = _score_and_clean(world, tmp_path, raw, world.params)
    pd.testing.assert_frame_equal(scores, plain_scores, check_exact=True)


@pytest.mark.reliability("files: NUL bytes (score)")
def test_a_nul_line_is_quarantined_and_changes_no_other_customer(
    world: World, tmp_path: Path, plain_scores: pd.DataFrame
) -> None:
    nul = b"999998,X\x00Y,1,1.0,2024-01-01 00:00:00,,app,0.0,,\n"
    raw = _variant(world, tmp_path, _after_header(nul * 3))
    scores, manifest = _score_and_clean(world, tmp_path, raw, world.params)
    assert manifest["rejected_by_reason"]["nul_byte"] == 3
    pd.testing.assert_frame_equal(scores, plain_scores, check_exact=True)


# --- change since the last run and drift (issue 14, item 4) ---------------------------------


def _manifest_of(out: Path) -> dict:
    return io.read_json(out.with_name(out.name + ".manifest.json"))


def test_at_the_test_cutoff_nothing_drifted(world: World, tmp_path: Path) -> None:
    """Scored at the models' test cutoff, the snapshot is their reference population again."""
    out = tmp_path / "scores.parquet"
    assert score(world, out, "--partitions", "3") == 0
    block = _manifest_of(out)["drift"]
    for target in ("churn", "repurchase"):
        model = block["models"][target]
        names = [
            f["name"]
            for f in io.read_json(world.root / "models" / target / "features.json")["features"]
        ]
        assert sorted(model["features"]) == sorted(names)
        assert model["reference"] == world.test_cutoff[:10]
        assert max(model["features"].values()) < 0.02 and model["score_psi"] < 0.02
    assert block["above_warn_psi"] == [] and block["snapshot"].startswith(world.test_cutoff[:10])
    assert _manifest_of(out)["change"]["previous"] is None


def test_the_partition_count_changes_no_drift_figure(world: World, tmp_path: Path) -> None:
    blocks = []
    for parts in ("1", "4"):
        out = tmp_path / parts / "scores.parquet"
        assert score(world, out, "--partitions", parts, as_of="latest") == 0
        blocks.append(_manifest_of(out)["drift"])
    assert blocks[0] == blocks[1]


def test_a_second_run_compares_with_the_scores_it_replaces(
    world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "scores.parquet"
    models = tuple(str(world.root / "models" / t) for t in ("churn", "repurchase", "value"))
    assert score(world, out, models=models) == 0
    then = io.read_parquet(out)
    caplog.clear()
    assert score(world, out, as_of="latest", models=models) == 0
    now = io.read_parquet(out)
    change = _manifest_of(out)["change"]
    at_risk_then = set(then.loc[then["churn_risk_band"] == "high", "customer_id"])
    at_risk_now = set(now.loc[now["churn_risk_band"] == "high", "customer_id"])
    assert change["previous"] == str(out) and change["notes"] == []
    assert change["as_of_then"].startswith(world.test_cutoff[:10])
    assert pd.Timestamp(change["as_of_now"]) == now["as_of"].iloc[0] > then["as_of"].iloc[0]
    assert change["newly_at_risk"] == len(at_risk_now - at_risk_then) > 0
    assert change["no_longer_at_risk"] == len(at_risk_then - at_risk_now)
    assert change["customers_then"] == len(then) and change["customers_now"] == len(now)
    assert then["value_at_risk"].sum() > 0
    assert change["value_at_risk_then"] == pytest.approx(then["value_at_risk"].sum())
    assert change["value_at_risk_now"] == pytest.approx(now["value_at_risk"].sum())
    newly = now[now["customer_id"].isin(at_risk_now - at_risk_then)]
    assert change["value_at_risk_newly_at_risk"] == pytest.approx(newly["value_at_risk"].sum())


def test_previous_scores_in_csv_compare_like_parquet(world: World, tmp_path: Path) -> None:
    parquet, csv_out = tmp_path / "then.parquet", tmp_path / "then.csv"
    assert score(world, parquet) == 0
    assert score(world, csv_out, "--format", "csv") == 0
    changes = []
    for previous in (parquet, csv_out):
        out = tmp_path / previous.suffix.strip(".") / "now.parquet"
        assert score(world, out, "--previous", str(previous), as_of="latest") == 0
        changes.append(_manifest_of(out)["change"])
    numbers = [{k: v for k, v in c.items() if k not in ("previous", "notes")} for c in changes]
    assert numbers[0] == pytest.approx(numbers[1]) and numbers[0]["newly_at_risk"] > 0
    assert changes[0]["notes"] == changes[1]["notes"]


def test_an_unreadable_previous_file_is_a_warning_not_a_failure(
    world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    garbage = tmp_path / "previous.parquet"
    garbage.write_bytes(b"PAR1 this is not parquet\x00\xff")
    out = tmp_path / "scores.parquet"
    assert score(world, out, "--previous", str(garbage)) == 0
    change = _manifest_of(out)["change"]
    assert change["previous"] is None and str(garbage) in change["notes"][0]
    warnings = [r for r in caplog.records if "previous scores not compared" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelname == "WARNING"
    assert len(io.read_parquet(out)) == _manifest_of(out)["customers_scored"]


def test_drift_past_the_line_is_one_warning_naming_the_param(
    world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    params = yaml.safe_load(world.params.read_text())
    params["score"]["drift_warn_psi"] = 0.05
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    out = tmp_path / "scores.parquet"
    args = score_args(world, out, as_of="latest")
    args[args.index("--params") + 1] = str(path)
    assert _run(*args) == 0
    block = _manifest_of(out)["drift"]
    assert block["warn_psi"] == 0.05 and block["above_warn_psi"]
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("drift:")]
    top = block["above_warn_psi"][0]
    assert len(lines) == 1 and "score.drift_warn_psi=0.05" in lines[0]
    assert f"{top['model']} {top['name']}" in lines[0]
