"""The embedded simulation: determinism, export format, dirty-row counts, mechanisms."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from pipeline import cli, io
from pipeline.config import DirtyRates, GenerateParams
from pipeline.sources import synthetic
from pipeline.sources.simulation.dirty import KINDS, inject
from pipeline.sources.simulation.mechanisms import Effects, dropout_hazard, seasonality

TS = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
CLEAN_ID = re.compile(r"^\d{5,6}$")
SMALL = GenerateParams(seed=7, n_customers=400)
# Enough customers for aggregate mechanisms to show clearly, still well under a second.
MEDIUM = GenerateParams(seed=11, n_customers=4000)


@pytest.fixture(scope="module")
def small() -> synthetic.SyntheticExport:
    return synthetic.generate(SMALL)


@pytest.fixture(scope="module")
def medium() -> synthetic.SyntheticExport:
    return synthetic.generate(MEDIUM)


def _write_params(path: Path, **generate: object) -> Path:
    path.write_text(yaml.safe_dump({"generate": generate}))
    return path


def _run_generate(tmp_path: Path, name: str, **generate: object) -> Path:
    params = _write_params(tmp_path / f"{name}.yaml", **generate)
    out = tmp_path / name
    assert cli.main(["generate", "--params", str(params), "--out", str(out)]) == 0
    return out


# --- the CLI and determinism ----------------------------------------------------------------


def test_cli_writes_the_files_byte_identical_for_the_same_seed(tmp_path: Path) -> None:
    first = _run_generate(tmp_path, "a", seed=3, n_customers=150)
    again = _run_generate(tmp_path, "b", seed=3, n_customers=150)
    other = _run_generate(tmp_path, "c", seed=4, n_customers=150)
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(synthetic.FILES.values())
    for name in names:
        assert (first / name).read_bytes() == (again / name).read_bytes(), name
    assert (first / "transactions.csv").read_bytes() != (other / "transactions.csv").read_bytes()
    assert not list(first.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_cli_help_shows_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["generate", "--help"]) == 0
    assert "Example: loyalty generate --params params.yaml --out data/synthetic" in (
        capsys.readouterr().out.replace("\n", " ")
    )


def test_end_before_start_is_a_one_line_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params = _write_params(tmp_path / "p.yaml", start="2024-01-01", end="2023-01-01")
    assert cli.main(["generate", "--params", str(params), "--out", str(tmp_path / "o")]) == 3
    assert capsys.readouterr().err.strip().startswith("error: generate: end")
    assert not (tmp_path / "o").exists()


def test_written_csv_reads_back_as_the_tables(tmp_path: Path) -> None:
    out = _run_generate(tmp_path, "a", seed=5, n_customers=100, dirty={"formula_text_rate": 0.02})
    lines = pd.read_csv(out / "transactions.csv", dtype=str, keep_default_na=False)
    manifest = io.read_json(out / "generate_manifest.json")
    assert len(lines) == manifest["rows"]["transactions"]
    # formula-like text is kept verbatim in the raw export (the clean stage must cope with it)
    formulas = lines["description"].str.startswith(("=", "@")).sum()
    assert formulas == manifest["dirty"]["formula_text"] > 0
    assert (lines["customer_id"] == "").sum() == manifest["dirty"]["missing_customer_id"]
    truth = pd.read_parquet(out / "ground_truth.parquet")
    assert str(truth["dropout_date"].dtype) == "datetime64[us, UTC]"
    assert truth.attrs["effects"] == Effects().as_dict()


# --- the export format (docs/architecture.md, "Synthetic raw export") -----------------------


def test_columns_match_the_contract(small: synthetic.SyntheticExport) -> None:
    assert list(small.transactions.columns) == [
        "invoice", "sku", "description", "quantity", "unit_price", "invoice_ts", "customer_id",
        "channel", "discount", "promised_date", "delivered_date",
    ]  # fmt: skip
    assert list(small.feedback.columns) == [
        "customer_id", "feedback_ts", "kind", "score", "resolved", "resolution_hours",
    ]  # fmt: skip
    assert list(small.customers.columns) == [
        "customer_id",
        "signup_date",
        "loyalty_member",
        "region",
    ]
    truth_columns = {
        "customer_id", "signup_date", "dropout_date", "loyalty_member", "orders_per_year",
        "mean_basket", "price_sensitivity", "final_satisfaction",
    }  # fmt: skip
    assert truth_columns <= set(small.ground_truth.columns)


def test_transaction_values_are_export_shaped(small: synthetic.SyntheticExport) -> None:
    lines = small.transactions
    assert lines["invoice"].str.fullmatch(r"C?\d{6}").all()
    assert lines["channel"].isin(["web", "store", "app"]).all()
    assert (lines["discount"] >= 0).all()
    returns = lines["invoice"].str.startswith("C")
    assert returns.any() and (lines.loc[returns, "quantity"] < 0).all()
    assert (lines.loc[returns, "promised_date"] == "").all()
    sales = lines[~returns]
    assert sales["promised_date"].str.fullmatch(DATE.pattern).all()
    delivered = sales["delivered_date"]
    assert (delivered.str.fullmatch(DATE.pattern) | (delivered == "")).all()
    ts = pd.to_datetime(sales["invoice_ts"], format="%Y-%m-%d %H:%M:%S", errors="coerce")
    known = (delivered != "") & (ts < pd.Timestamp("2025-01-01"))  # not the dirty dates
    assert (pd.to_datetime(delivered[known]) >= ts[known].dt.normalize()).all()
    share_clean_ts = lines["invoice_ts"].str.fullmatch(TS.pattern).mean()
    assert share_clean_ts > 0.99


def test_feedback_values(small: synthetic.SyntheticExport) -> None:
    fb = small.feedback
    assert set(fb["kind"]) == {"review", "survey", "nps", "complaint"}
    assert fb["feedback_ts"].str.fullmatch(TS.pattern).all()
    assert (fb["feedback_ts"] <= "2024-12-31 23:59:59").all()
    scores = fb.set_index("kind")["score"]
    assert scores[["review", "survey"]].between(1, 5).all()
    assert scores["nps"].between(0, 10).all()
    complaints = fb[fb["kind"] == "complaint"]
    assert complaints["score"].isna().all()
    assert set(complaints["resolved"]) == {"true", "false"}
    assert complaints.loc[complaints["resolved"] == "true", "resolution_hours"].gt(0).all()
    assert complaints.loc[complaints["resolved"] == "false", "resolution_hours"].isna().all()
    assert (fb.loc[fb["kind"] != "complaint", "resolved"] == "").all()


def test_customers_and_ids(small: synthetic.SyntheticExport) -> None:
    customers = small.customers
    assert customers["customer_id"].is_unique and len(customers) == SMALL.n_customers
    assert customers["customer_id"].str.fullmatch(CLEAN_ID.pattern).all()
    assert set(customers["loyalty_member"]) == {"true", "false"}
    signup = customers["signup_date"]
    assert signup.min() < "2023-01-01" <= signup.max() <= "2024-12-31"  # existing + new customers
    assert set(small.feedback["customer_id"]) <= set(customers["customer_id"])
    assert small.ground_truth["customer_id"].tolist() == customers["customer_id"].tolist()


# --- dirty rows -------------------------------------------------------------------------------


def test_dirty_counts_follow_the_rates_and_are_in_the_data(
    medium: synthetic.SyntheticExport,
) -> None:
    lines, counts = medium.transactions, medium.manifest["dirty"]
    n = len(lines) - counts["duplicate"]
    for kind, field in KINDS.items():
        assert counts[kind] == round(getattr(MEDIUM.dirty, field) * n), kind
    ids, ts = lines["customer_id"], lines["invoice_ts"]
    sale = ~lines["invoice"].str.startswith("C")
    assert lines.duplicated().sum() == counts["duplicate"]
    assert (ids == "").sum() == counts["missing_customer_id"]
    assert ids.str.endswith(".0").sum() == counts["float_id"]
    assert (ids != ids.str.strip()).sum() == counts["padded_id"]
    parsed = pd.to_datetime(ts, format="%Y-%m-%d %H:%M:%S", errors="coerce")
    assert parsed.isna().sum() == counts["bad_date"]
    assert (parsed > pd.Timestamp("2024-12-31 23:59:59")).sum() == counts["future_date"]
    assert (sale & (lines["quantity"] < 0)).sum() == counts["negative_quantity"]
    assert (lines["unit_price"] == 0).sum() == counts["zero_price"]
    assert (lines["quantity"] >= 10_000).sum() == counts["outlier_quantity"]
    assert lines["description"].str.startswith(("=", "@")).sum() == counts["formula_text"]


def test_zero_rates_give_a_clean_export() -> None:
    zero = DirtyRates(**{field: 0.0 for field in DirtyRates.model_fields})
    export = synthetic.generate(GenerateParams(seed=1, n_customers=200, dirty=zero))
    lines = export.transactions
    assert set(export.manifest["dirty"].values()) == {0}
    assert not lines.duplicated().any()
    assert lines["customer_id"].str.fullmatch(CLEAN_ID.pattern).all()
    assert lines["invoice_ts"].str.fullmatch(TS.pattern).all()
    assert (lines["unit_price"] > 0).all()


# --- mechanisms in aggregate ----------------------------------------------------------------


def _clean_sales(export: synthetic.SyntheticExport) -> pd.DataFrame:
    lines = export.transactions.drop_duplicates()
    lines = lines[
        ~lines["invoice"].str.startswith("C") & lines["customer_id"].str.fullmatch(r"\d+")
    ]
    ts = pd.to_datetime(lines["invoice_ts"], format="%Y-%m-%d %H:%M:%S", errors="coerce")
    orders = lines.assign(ts=ts).dropna(subset=["ts"]).groupby("invoice", as_index=False).first()
    return orders[orders["ts"] <= pd.Timestamp("2024-12-31 23:59:59")]


def test_no_orders_after_the_true_dropout(medium: synthetic.SyntheticExport) -> None:
    orders = _clean_sales(medium)
    truth = medium.ground_truth.set_index("customer_id")
    dropout = truth["dropout_date"].dt.tz_localize(None).reindex(orders["customer_id"]).to_numpy()
    assert not (orders["ts"].to_numpy() >= dropout).any()  # NaT compares False
    assert truth["dropout_date"].notna().mean() == pytest.approx(
        medium.manifest["dropped_out"] / MEDIUM.n_customers
    )


def test_dropout_falls_with_satisfaction_and_membership(medium: synthetic.SyntheticExport) -> None:
    truth = medium.ground_truth
    dropped = truth["dropout_date"].notna()
    tercile = pd.qcut(truth["final_satisfaction"], 3, labels=["low", "mid", "high"])
    rate = dropped.groupby(tercile, observed=True).mean()
    assert rate["low"] > rate["mid"] > rate["high"]
    by_member = dropped.groupby(truth["loyalty_member"]).mean()
    assert by_member[True] < by_member[False] - 0.05
    # unresolved complaints: customers with one drop out more often
    assert dropped[truth["n_unresolved"] > 0].mean() > dropped[truth["n_unresolved"] == 0].mean()


def test_region_is_a_null_mechanism(medium: synthetic.SyntheticExport) -> None:
    truth = medium.ground_truth
    rates = truth["dropout_date"].notna().groupby(truth["region"]).mean()
    assert rates.max() - rates.min() < 0.08  # ~800 customers per region: sampling noise only


def test_seasonal_peak_in_november_december(medium: synthetic.SyntheticExport) -> None:
    orders = _clean_sales(medium)
    per_day = orders.groupby(orders["ts"].dt.date).size()
    month = pd.to_datetime(pd.Series(per_day.index)).dt.month.to_numpy()
    peak = per_day.to_numpy()[np.isin(month, [11, 12])].mean()
    rest = per_day.to_numpy()[~np.isin(month, [11, 12])].mean()
    assert peak > 1.4 * rest


def test_churn_and_repurchase_base_rates_are_realistic(medium: synthetic.SyntheticExport) -> None:
    orders = _clean_sales(medium)
    cutoff = pd.Timestamp("2024-07-01")
    before = orders["ts"].between(cutoff - pd.Timedelta(days=365), cutoff, inclusive="left")
    active = set(orders.loc[before, "customer_id"])

    def bought_within(days: int) -> set[str]:
        window = orders["ts"].between(cutoff, cutoff + pd.Timedelta(days=days), inclusive="left")
        return set(orders.loc[window, "customer_id"])

    churn = 1 - len(active & bought_within(90)) / len(active)
    repurchase = len(active & bought_within(30)) / len(active)
    assert 0.2 < churn < 0.5
    assert 0.15 < repurchase < 0.5


def test_feedback_reads_satisfaction(medium: synthetic.SyntheticExport) -> None:
    fb = medium.feedback
    truth = medium.ground_truth.set_index("customer_id")["satisfaction_baseline"]
    reviews = fb[fb["kind"] == "review"]
    corr = np.corrcoef(reviews["score"].astype(float), truth.reindex(reviews["customer_id"]))[0, 1]
    assert corr > 0.3
    nps = fb[fb["kind"] == "nps"]
    corr_nps = np.corrcoef(nps["score"].astype(float), truth.reindex(nps["customer_id"]))[0, 1]
    assert corr_nps > 0.3


# --- the hazard function and the documented coefficients ----------------------------------


@given(
    s=st.floats(-3, 3),
    step=st.floats(0.05, 1),
    unresolved=st.floats(0, 3),
    missed=st.floats(0, 10),
    member=st.booleans(),
)
def test_hazard_shape(
    s: float, step: float, unresolved: float, missed: float, member: bool
) -> None:
    e = Effects()

    def h(sat: float, u: float = unresolved, g: float = missed, m: bool = member) -> float:
        return float(dropout_hazard(sat, u, g, m, e))

    assert h(s + step) < h(s)  # more satisfied, less likely to leave
    assert h(s, u=unresolved + 0.5) > h(s)
    assert h(s, g=missed + 1) >= h(s)  # equal beyond the gap cap
    assert h(s, m=True) <= h(s, m=False)
    # non-linear: the same gain in satisfaction matters more when satisfaction is low
    assert h(-1.0) - h(-1.0 + step) > h(1.5) - h(1.5 + step)


def test_seasonality_peaks_in_early_december() -> None:
    days = np.arange(1, 366)
    assert 305 <= days[np.argmax(seasonality(days, Effects()))] <= 365
    assert seasonality([150], Effects())[0] == pytest.approx(1.0, abs=1e-6)


def test_every_coefficient_is_documented_with_its_value(repo_root: Path) -> None:
    doc = (repo_root / "docs" / "simulation.md").read_text()
    for field in dataclasses.fields(Effects):
        value = getattr(Effects(), field.name)
        assert re.search(rf"`{field.name}`\s*\|\s*{re.escape(str(value))}\s*\|", doc), field.name


def test_manifest_records_params_and_effects(small: synthetic.SyntheticExport) -> None:
    manifest = small.manifest
    assert manifest["params"]["n_customers"] == SMALL.n_customers
    assert manifest["effects"] == Effects().as_dict()
    assert manifest["rows"]["transactions"] == len(small.transactions)
    assert manifest["return_lines"] == small.transactions["invoice"].str.startswith("C").sum()
    assert dt.date.fromisoformat(manifest["params"]["end"]) == SMALL.end


def test_inject_hits_distinct_sale_lines_only() -> None:
    # eleven sale lines (one per dirty kind, plus one left clean) and one return line that
    # must never be touched: at a rate of 1/12 each kind hits exactly one line
    sales = pd.DataFrame(
        {
            "invoice": [str(500_000 + i) for i in range(11)] + ["C500099"],
            "description": ["MUG"] * 12,
            "quantity": [2] * 11 + [-2],
            "unit_price": [1.5] * 12,
            "invoice_ts": ["2023-05-01 10:00:00"] * 12,
            "customer_id": ["12345"] * 12,
        }
    )
    rate = 1 / 12
    dirty_lines, counts = inject(
        sales, DirtyRates(**dict.fromkeys(DirtyRates.model_fields, rate)), dt.date(2023, 12, 31),
        np.random.default_rng(0),
    )  # fmt: skip
    assert counts == dict.fromkeys(KINDS, 1)
    assert len(dirty_lines) == 13  # one duplicate added
    assert dirty_lines.iloc[-1].to_dict() == sales.iloc[-1].to_dict()  # the C line is untouched
    changed = (dirty_lines.drop_duplicates().reset_index(drop=True) != sales).any(axis=1)
    assert changed.sum() == len(KINDS) - 1  # every kind but the duplicate edits its own line
    assert sales["customer_id"].eq("12345").all()  # the input is not mutated
