"""The explain and report stages on a real synthetic run: generate -> ... -> report, via the CLI.

One module-scoped run (8,000 simulated customers, both binary targets and the value model)
feeds every test: the report's pages and numbers against metrics.json, the SHAP tables against
the training predictions, the ground truth of the simulation (drivers of churn, expected future
spend), MLflow logging, and the exploration notebook.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipeline.cli import main
from tests.support.faults import assert_disk_full_keeps_old_set, snapshot

# One group: the module-scoped run is built once, on one xdist worker.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.xdist_group("report_run")]

REPO = Path(__file__).resolve().parents[2]
#: Most printed A4 pages each page of the report may take.
PRINTED_PAGES = {"index": 8, "method": 6, "churn": 8, "repurchase": 8}
N_CUSTOMERS = 8000
TARGETS = ("churn", "repurchase")


def _cli(*args: str) -> None:
    assert main(list(args)) == 0, args


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("run")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["generate"]["n_customers"] = N_CUSTOMERS
    params["data"]["input"] = str(root / "data" / "synthetic")
    params["mlflow"]["tracking_uri"] = f"sqlite:///{root / 'mlflow.db'}"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    p, dictionary = str(root / "params.yaml"), str(REPO / "configs" / "features.yaml")
    data, models, reports = root / "data", root / "models", root / "reports"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        _cli("generate", "--params", p, "--out", str(data / "synthetic"))
        _cli(
            "clean", "--params", p, "--input", str(data / "synthetic"), "--out", str(data / "clean")
        )
        _cli(
            "features",
            "--params",
            p,
            "--clean",
            str(data / "clean"),
            "--dictionary",
            dictionary,
            "--out",
            str(data / "features"),
        )
        for target in TARGETS:
            _cli(
                "train",
                "--params",
                p,
                "--target",
                target,
                "--features",
                str(data / "features"),
                "--out",
                str(models / target),
                "--metrics",
                str(reports / "metrics" / f"{target}.json"),
                "--plots",
                str(reports / "plots" / target),
                "--dictionary",
                dictionary,
            )
            _cli(
                "explain",
                "--params",
                p,
                "--target",
                target,
                "--model",
                str(models / target),
                "--features",
                str(data / "features"),
                "--dictionary",
                dictionary,
                "--out",
                str(reports / "explain" / target),
            )
        _cli(
            "train",
            "--params",
            p,
            "--target",
            "value",
            "--features",
            str(data / "features"),
            "--out",
            str(models / "value"),
            "--metrics",
            str(reports / "metrics" / "value.json"),
            "--plots",
            str(reports / "plots" / "value"),
            "--dictionary",
            dictionary,
        )
        _cli(
            "score",
            "--params",
            p,
            "--input",
            str(data / "synthetic"),
            "--as-of",
            "latest",
            "--model",
            str(models),
            "--features-config",
            dictionary,
            "--out",
            str(data / "scores" / "scores.parquet"),
            "--no-progress",
        )
        _cli(
            "report",
            "--params",
            p,
            "--models",
            str(models),
            "--explain",
            str(reports / "explain"),
            "--scores",
            str(data / "scores" / "scores.parquet"),
            "--features",
            str(data / "features"),
            "--metrics",
            str(reports / "metrics"),
            "--clean",
            str(data / "clean"),
            "--dictionary",
            dictionary,
            "--out",
            str(reports / "site"),
        )
    return root


def _concepts(run: Path, target: str) -> dict:
    return json.loads((run / "reports" / "explain" / target / "concepts.json").read_text())


def _explain(run: Path, out: Path, params: Path) -> int:
    return main(
        [
            "explain",
            "--params",
            str(params),
            "--target",
            "churn",
            "--model",
            str(run / "models" / "churn"),
            "--features",
            str(run / "data" / "features"),
            "--dictionary",
            str(REPO / "configs" / "features.yaml"),
            "--out",
            str(out),
        ]
    )


@pytest.mark.reliability("infrastructure: disk full while a stage writes its folder (explain)")
def test_explain_disk_full_leaves_the_previous_complete_set(
    run: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    params = yaml.safe_load((run / "params.yaml").read_text())
    params["explain"]["max_rows"] = 400
    fewer = tmp_path / "params.yaml"
    fewer.write_text(yaml.safe_dump(params))
    out = tmp_path / "explain"
    assert _explain(run, out, fewer) == 0

    def rerun() -> tuple[int, str]:  # every test row: another set
        capsys.readouterr()
        return _explain(run, out, run / "params.yaml"), capsys.readouterr().err

    # the tables written, then the disk fills
    assert_disk_full_keeps_old_set(
        monkeypatch,
        rerun,
        [out],
        at="concepts.json",
        written_first="shap.parquet",
        named=out / "concepts.json",
    )


@pytest.mark.reliability("security: --out inside an input folder")
def test_explain_output_inside_the_model_folder_is_refused(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = run / "models" / "churn"
    before = snapshot(model)
    assert _explain(run, model / "explain", run / "params.yaml") == 2
    assert "inside input folder" in capsys.readouterr().err
    assert snapshot(model) == before


def test_report_pages_sections_and_images(run: Path) -> None:
    site = run / "reports" / "site"
    assert sorted(p.name for p in site.iterdir()) == [
        "churn.html",
        "contact_list.csv",
        "index.html",
        "method.html",
        "repurchase.html",
    ]
    index = (site / "index.html").read_text()
    titles = ["Summary", "Who to contact first", "Why customers leave", "Segments"]
    positions = [index.index(f"<h2>{title}") for title in titles]
    assert positions == sorted(positions)
    for page in site.glob("*.html"):
        html = page.read_text()
        images = re.findall(r'<img src="([^"]*)"', html)
        assert images or page.name == "method.html", page
        assert all(i.startswith("data:image/png;base64,") for i in images), page
        assert not re.search(r'(src|href)="https?://', html), page
    assert (site / "churn.html").read_text().count("data:image/png") >= 7


def test_report_numbers_match_metrics_json(run: Path) -> None:
    index = (run / "reports" / "site" / "index.html").read_text()
    method = (run / "reports" / "site" / "method.html").read_text()
    for target in TARGETS:
        metrics = json.loads((run / "reports" / "metrics" / f"{target}.json").read_text())
        assert f"{metrics['model']['roc_auc']:.3f}" in method
        assert f"{metrics['baselines']['recency']['roc_auc']:.3f}" in method
        assert f"{metrics['model']['lift_top_decile']:.2f}" in method
        assert f"{metrics['model']['capture_top_decile']:.0%}" in index  # in plain words
    # every customer number of the report is read off the scores (nothing is re-scored)
    scored = pd.read_parquet(run / "data" / "scores" / "scores.parquet")
    assert f"<strong>{len(scored):,}</strong> active customers scored" in index
    churners = int((scored["churn_risk_band"] == "high").sum())
    assert churners == int((scored["churn_probability"] >= 0.5).sum())
    assert f"<strong>{churners:,}</strong> of them ({churners / len(scored):.0%})" in index
    expected = scored["churn_probability"].sum()
    assert f"<strong>{expected:,.0f}</strong> are expected to stop buying" in index
    assert f"<strong>€{scored['value_at_risk'].sum():,.0f}</strong>" in index  # synthetic: EUR
    high_tier = int((scored["loyalty_tier"] == "high").sum())
    assert f'<div class="value">{high_tier:,}</div><div class="label">likely to buy again' in index
    manifest = json.loads((run / "data" / "clean" / "manifest.json").read_text())
    for reason, count in manifest["rejected_by_reason"].items():
        assert f'<td>{reason}</td><td class="n">{count:,}</td>' in method


def test_contact_list_ranks_value_at_risk_with_a_reason_and_an_action(run: Path) -> None:
    contacts = pd.read_csv(run / "reports" / "site" / "contact_list.csv", dtype=str)
    scored = pd.read_parquet(run / "data" / "scores" / "scores.parquet")
    budget = -(-len(scored) * 5 // 100)  # report.contact_budget 0.05, rounded up
    assert len(contacts) == budget
    top = scored.sort_values(["value_at_risk", "customer_id"], ascending=[False, True]).head(budget)
    assert contacts["customer_id"].tolist() == top["customer_id"].tolist()
    # the line from which everyone is explained reaches the whole list here
    assert contacts["reason"].notna().all() and contacts["suggested_action"].notna().all()
    actions = set(
        yaml.safe_load((REPO / "params.yaml").read_text())["business"]["actions"].values()
    )
    assert set(contacts["suggested_action"]) <= actions
    index = (run / "reports" / "site" / "index.html").read_text()
    assert contacts.loc[0, "reason"].split(";")[0] in index


def _headings(html: str) -> list[str]:
    return [
        re.sub(r"<[^>]+>|\s+", " ", h).strip()
        for h in re.findall(r"<h[23][^>]*>(.*?)</h[23]>", html, re.S)
    ]


@pytest.mark.skipif(
    shutil.which("chromium") is None or shutil.which("pdftotext") is None,
    reason="printing needs Debian's chromium and poppler-utils' pdftotext (apt-get install "
    "chromium poppler-utils)",
)
def test_each_page_prints_without_a_heading_at_the_foot_of_a_page(
    run: Path, tmp_path: Path
) -> None:
    for page in sorted((run / "reports" / "site").glob("*.html")):
        pdf = tmp_path / f"{page.stem}.pdf"
        subprocess.run(
            [
                "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-pdf-header-footer",
                f"--print-to-pdf={pdf}",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=180,
        )
        text = subprocess.run(
            ["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True
        ).stdout
        pages = [p for p in text.split("\f") if p.strip()]
        assert 1 <= len(pages) <= PRINTED_PAGES[page.stem], (page.name, len(pages))
        headings = {re.sub(r"^\d+\.\s*", "", h) for h in _headings(page.read_text())}
        for number, printed in enumerate(pages[:-1], start=1):
            last = re.sub(r"^\d+\.\s*", "", printed.strip().splitlines()[-1].strip())
            assert last not in headings, f"{page.name}: page {number} ends with heading {last!r}"


def test_shap_tables_add_up_to_the_training_margins(run: Path) -> None:
    for target in TARGETS:
        folder = run / "reports" / "explain" / target
        shap_values = pd.read_parquet(folder / "shap.parquet")
        features = json.loads((run / "models" / target / "features.json").read_text())
        names = [f["name"] for f in features["features"]]
        assert list(shap_values.columns) == ["customer_id", "cutoff", *names, "base_value"]
        predictions = pd.read_parquet(
            run / "models" / target / "test_predictions.parquet",
            columns=["customer_id", "cutoff", "raw_margin"],
        )
        joined = shap_values.merge(predictions, on=["customer_id", "cutoff"], validate="one_to_one")
        assert len(joined) == len(shap_values) > 0
        total = joined[names].sum(axis=1) + joined["base_value"]
        assert (total - joined["raw_margin"]).abs().max() <= 1e-6
        reasons = pd.read_parquet(folder / "reasons.parquet")
        assert reasons["customer_id"].tolist() == shap_values["customer_id"].tolist()
        # the scorer's rule on the model's own reference (every test row is explained):
        # the top 20%, round(0.2 x n) exactly, each with one sentence per concept
        chosen = features["reference"]["reason_cuts"]["customers"][199]
        assert chosen == (2 * 200 * len(predictions) + 1000) // 2000
        given = reasons["reason_1"].notna()
        assert 0.95 * chosen <= given.sum() <= chosen
        told = reasons.loc[given, ["reason_concept_1", "reason_concept_2", "reason_concept_3"]]
        assert all(len(set(row.dropna())) == row.notna().sum() for _, row in told.iterrows())


def test_drivers_match_the_simulation_ground_truth(run: Path) -> None:
    """Churn in the simulation comes from the order gap (recency), satisfaction, unresolved
    complaints (service) and membership; region and channel do nothing (docs/simulation.md)."""
    concepts = {c["concept"]: c["rank"] for c in _concepts(run, "churn")["concepts"]}
    assert concepts["recency"] <= 2 and concepts["satisfaction"] <= 4
    # service is a rarer mechanism (few customers have an unresolved complaint) but it still
    # outranks price, which has no effect on dropout in the simulation
    assert concepts["service"] < concepts["price"]
    features = {f["feature"]: f for f in _concepts(run, "churn")["features"]}
    # region is a null mechanism: with 8,000 customers the model still fits a little noise to
    # it (rank ~26 of 52 here, 43 of 52 at the default 20,000), so the check is on size: a few
    # percent of the recency effect at most, and below loyalty membership (a real mechanism).
    top = features["days_since_last_order"]["mean_abs_shap"]
    assert features["region"]["rank"] > 15
    assert features["region"]["mean_abs_shap"] < 0.05 * top
    assert features["loyalty_member"]["rank"] < features["region"]["rank"]


def test_value_predictions_follow_the_simulations_expected_spend(run: Path) -> None:
    """On the value test cutoff, predicted spend against the spend the simulation expects from
    its latent state (purchase rates, satisfaction, dropout): docs/modeling.md has the figures."""
    from pipeline.config import load_params
    from pipeline.sources.simulation.truth import expected_future_spend

    metrics = json.loads((run / "reports" / "metrics" / "value.json").read_text())
    cutoff = pd.Timestamp(metrics["test_cutoff"]).date()
    predicted = pd.read_parquet(run / "models" / "value" / "test_predictions.parquet")
    params = load_params(run / "params.yaml").generate
    truth = expected_future_spend(params, cutoff, metrics["horizon_days"], paths=16)
    both = predicted.merge(truth, on="customer_id")
    assert len(both) == len(predicted)
    pearson = both["prediction"].corr(both["expected_spend"])
    spearman = both["prediction"].corr(both["expected_spend"], method="spearman")
    top = both["prediction"].rank(ascending=False) <= len(both) / 10
    true_top = both["expected_spend"].rank(ascending=False) <= len(both) / 10
    overlap = (top & true_top).sum() / top.sum()
    # measured at 8,000 customers (design tweedie_btyd kept): Pearson 0.746, Spearman 0.776,
    # top-decile overlap 0.675; two_part before the BTYD design: 0.724, 0.770, 0.621
    assert pearson > 0.6 and spearman > 0.65 and overlap > 0.5, (pearson, spearman, overlap)
    # the model ranks by the truth better than last year's spend (measured 0.528)
    baseline = both["last_year_spend"].corr(both["expected_spend"], method="spearman")
    assert spearman > baseline + 0.1, (spearman, baseline)
    # and its level: mean predicted spend within 15% of the mean expected spend (measured -6%)
    assert both["prediction"].mean() == pytest.approx(both["expected_spend"].mean(), rel=0.15)


def test_report_is_logged_to_the_training_runs(run: Path) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{run / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("loyalty-pipeline")
    runs = client.search_runs([experiment.experiment_id], "attributes.run_name LIKE 'train-%'")
    assert {r.data.tags["target"] for r in runs} == {*TARGETS, "value"}
    for r in (r for r in runs if r.data.tags["target"] in TARGETS):  # pages per target
        paths = {a.path for a in client.list_artifacts(r.info.run_id, "report")}
        assert "report/index.html" in paths


def test_notebook_runs_on_the_outputs(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    path = REPO / "notebooks" / "01-explore-drivers.ipynb"
    notebook = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code")
    monkeypatch.setenv("LOYALTY_RUN", str(run))
    client = nbclient.NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(REPO / "notebooks")}},
    )
    client.execute()
