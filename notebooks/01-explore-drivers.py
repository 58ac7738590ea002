# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 - Explore the drivers of churn and repurchase
#
# Loads the latest run's outputs (`dvc repro` writes them) through `pipeline` functions and
# looks at what drives each model: concept groups, single features, how a driver acts
# (dependence) and a few customers' reason codes. Nothing here is reused by the pipeline.
#
# Set `LOYALTY_RUN` to the folder of another run (the project root by default).

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

import pipeline
from pipeline import io
from pipeline.config import load_params
from pipeline.explain import concept_importance, feature_importance
from pipeline.reasons import load_dictionary
from pipeline.report.build import align_explained

PROJECT = Path(pipeline.__file__).resolve().parents[1]
ROOT = Path(os.environ.get("LOYALTY_RUN", PROJECT))
params = load_params(ROOT / "params.yaml")
dictionary_path = ROOT / "configs" / "features.yaml"
if not dictionary_path.exists():
    dictionary_path = PROJECT / "configs" / "features.yaml"
dictionary = load_dictionary(dictionary_path)
panel = io.read_parquet(ROOT / "data" / "features" / "panel.parquet")
test_rows = panel[panel["split"] == "test"]
targets = [t for t in params.train.targets if (ROOT / "reports" / "explain" / t).is_dir()]
print(targets)

# %% [markdown]
# ## Concept groups: the business view
# Mean absolute SHAP (log-odds), with each customer's contributions summed per concept first.

# %%
shap_tables = {
    t: io.read_parquet(ROOT / "reports" / "explain" / t / "shap.parquet") for t in targets
}
for target, table in shap_tables.items():
    by_concept = concept_importance(table, dictionary.concepts(list(table.columns)))
    by_concept["label"] = by_concept["concept"].map(dictionary.label)
    print(target)
    print(by_concept[["rank", "label", "mean_abs_shap", "mean_shap"]].to_string(index=False))

# %% [markdown]
# ## Single features
# Where do the null mechanisms of the simulation (region, channel) land?

# %%
target = targets[0]
table = shap_tables[target]
by_feature = feature_importance(table, dictionary.concepts(list(table.columns)))
by_feature.head(15)

# %%
by_feature[by_feature["feature"].isin(["region", "channels_used", "loyalty_member"])]

# %% [markdown]
# ## How a driver acts: pick any feature
# The effect is in percentage points of probability for an otherwise average customer.

# %%
explained = align_explained(table, test_rows)
feature = next(
    (f for f in by_feature["feature"] if dictionary.info(f).concept == "satisfaction"),
    by_feature["feature"].iloc[0],
)
info = dictionary.info(feature)
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.scatter(explained[feature], table[feature], s=4, alpha=0.3)
ax.axhline(0, color="black", linewidth=0.5)
ax.set_xlabel(f"{info.description} ({info.unit})")
ax.set_ylabel("SHAP value (log-odds)")
plt.show()

# %%
binned = pd.DataFrame({"value": explained[feature], "shap": table[feature]}).dropna()
binned.groupby(pd.qcut(binned["value"], 10, duplicates="drop"), observed=True)["shap"].mean()

# %% [markdown]
# ## Reason codes of the riskiest test customers

# %%
reasons = io.read_parquet(ROOT / "reports" / "explain" / target / "reasons.parquet")
test_predictions_path = ROOT / "models" / target / "test_predictions.parquet"
if test_predictions_path.exists():
    scored = io.read_parquet(test_predictions_path)
    reasons = reasons.merge(
        scored[["customer_id", "cutoff", "probability"]], on=["customer_id", "cutoff"], how="left"
    )
    reasons = reasons.sort_values("probability", ascending=False)
reasons.head(10)
