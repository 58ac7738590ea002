"""Change since the last run: customers newly at risk, value at risk then and now.

Each hand-written customer has a reason to be there: A at risk both times, B newly at risk,
C no longer at risk, D new since the last run and at risk, E gone since the last run.
"""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.change import RunScores, change_since, no_previous, summarise, wanted


def scores(rows: list[tuple[str, str, float]], as_of: str, version: str = "v1") -> pd.DataFrame:
    ids, bands, values = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "customer_id": pd.array(ids, dtype="string"),
            "as_of": pd.Timestamp(as_of, tz="UTC"),
            "churn_probability": 0.5,
            "churn_risk_band": pd.array(bands, dtype="string"),
            "value_at_risk": values,
            "churn_model_version": version,
        }
    )


THEN = scores(
    [("A", "high", 10.0), ("B", "medium", 5.0), ("C", "high", 7.0), ("E", "high", 1.0)],
    "2024-12-01",
)
NOW = scores(
    [("A", "high", 12.0), ("B", "high", 6.0), ("C", "low", 0.5), ("D", "high", 3.0)],
    "2025-01-01",
)


def run(frame: pd.DataFrame, batch: int = 2) -> RunScores:
    picked = frame[wanted(frame.columns)]
    # as pipeline.io.iter_table gives a table: one batch at least, empty when it has no rows
    return summarise(picked.iloc[i : i + batch] for i in range(0, max(len(picked), 1), batch))


def test_newly_at_risk_and_value_at_risk_then_and_now() -> None:
    block = change_since(run(THEN), run(NOW), "old.parquet")
    assert block["as_of_then"].startswith("2024-12-01") and block["as_of_now"].startswith("2025")
    assert (block["at_risk_then"], block["at_risk_now"]) == (3, 3)
    assert block["newly_at_risk"] == 2  # B (was medium) and D (not scored last time)
    assert block["no_longer_at_risk"] == 2  # C (now low) and E (gone)
    assert block["still_at_risk"] == 1  # A
    assert block["value_at_risk_then"] == pytest.approx(23.0)
    assert block["value_at_risk_now"] == pytest.approx(21.5)
    assert block["value_at_risk_newly_at_risk"] == pytest.approx(9.0)
    assert block["notes"] == [] and "models_changed" not in block


def test_batches_do_not_change_the_summary() -> None:
    assert run(NOW, batch=1) == run(NOW, batch=10)


def test_a_new_model_version_still_compares_with_a_note() -> None:
    newer = NOW.assign(churn_model_version="v2")
    block = change_since(run(THEN), run(newer), "old.parquet")
    assert block["models_changed"] == {"churn": {"then": "v1", "now": "v2"}}
    assert block["newly_at_risk"] == 2 and "churn" in block["notes"][0]


def test_previous_scores_without_a_column_compare_on_what_both_have() -> None:
    block = change_since(run(THEN.drop(columns="value_at_risk")), run(NOW), "old.csv")
    assert "value_at_risk_then" not in block and block["newly_at_risk"] == 2
    assert any("value at risk not compared" in note for note in block["notes"])
    unvalued = change_since(run(THEN), run(NOW.assign(value_at_risk=float("nan"))), "old.csv")
    assert "value_at_risk_now" not in unvalued and "value_at_risk_newly_at_risk" not in unvalued
    banded = change_since(run(THEN.drop(columns="churn_risk_band")), run(NOW), "old.csv")
    assert "newly_at_risk" not in banded and banded["value_at_risk_then"] == pytest.approx(23.0)


def test_previous_scores_without_customer_ids_compare_nothing() -> None:
    block = change_since(run(THEN.drop(columns="customer_id")), run(NOW), "old.csv")
    assert block["customers_then"] == 4 and "newly_at_risk" not in block
    assert block["notes"] == ["old.csv: no customer_id column, so no customer is compared"]


def test_csv_text_cells_summarise_like_parquet_values() -> None:
    as_text = NOW.astype("string")
    assert run(as_text).at_risk == run(NOW).at_risk
    assert run(as_text).value_at_risk == pytest.approx(run(NOW).value_at_risk)


def test_an_empty_previous_run_makes_everyone_at_risk_new() -> None:
    block = change_since(run(THEN.iloc[:0]), run(NOW), "old.parquet")
    assert block["newly_at_risk"] == 3 and block["at_risk_then"] == 0


def test_no_previous_says_why() -> None:
    assert no_previous("first run") == {"previous": None, "notes": ["first run"]}
