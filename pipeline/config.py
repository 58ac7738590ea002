"""Typed models of ``params.yaml``: one frozen pydantic model per stage section.

Unknown keys are errors (a typo in ``params.yaml`` must not be silently ignored).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pipeline import io, names
from pipeline.dates import iso_date, iso_instant
from pipeline.errors import ConfigError


def _optional(parse: Any) -> Any:
    return lambda value: None if value is None else parse(value)


#: A date param: ``YYYY-MM-DD`` only (``01/10/2024`` is refused, never read one way or another).
IsoDate = Annotated[dt.date, BeforeValidator(iso_date)]
OptionalIsoDate = Annotated[dt.date | None, BeforeValidator(_optional(iso_date))]
#: An instant param: an ISO date (midnight UTC) or an ISO date and time with its zone.
OptionalIsoInstant = Annotated[
    dt.datetime | None, BeforeValidator(_optional(lambda v: iso_instant(v).to_pydatetime()))
]


class Section(BaseModel):
    """Base of every params section: frozen, no unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")


#: Where ``data.source`` names its config (relative to the project folder).
SOURCE_CONFIGS = "configs/sources"


class DataParams(Section):
    """Which raw export the pipeline reads."""

    # The name of a source config: configs/sources/<source>.yaml (synthetic, online_retail,
    # csv, or one of your own).
    source: str = Field("synthetic", pattern=names.NAME)
    # null = configs/sources/<source>.yaml; set it to use another mapping for the same source.
    source_config: str | None = None
    input: str = "data/synthetic"

    def source_config_path(self) -> Path:
        """Return the source config: ``source_config``, else ``configs/sources/<source>.yaml``.

        A ``source`` without its file is a one-line error naming the key, the configs there
        are and the fix.
        """
        if self.source_config is not None:
            return Path(self.source_config)
        path = Path(SOURCE_CONFIGS) / f"{self.source}.yaml"
        if not path.exists():
            found = sorted(p.stem for p in Path(SOURCE_CONFIGS).glob("*.yaml"))
            raise ConfigError(
                f"data.source {self.source!r}: {path} not found (there: "
                f"{', '.join(found) or 'none'}); add {path} or set data.source_config"
            )
        return path


class DirtyRates(Section):
    """Shares of transaction lines turned into each kind of dirty row by the simulation."""

    duplicate_rate: float = Field(0.003, ge=0, le=0.2)
    missing_customer_id_rate: float = Field(0.01, ge=0, le=0.5)
    float_id_rate: float = Field(0.02, ge=0, le=0.5)
    padded_id_rate: float = Field(0.01, ge=0, le=0.5)
    bad_date_rate: float = Field(0.0005, ge=0, le=0.2)
    future_date_rate: float = Field(0.0003, ge=0, le=0.2)
    negative_quantity_rate: float = Field(0.0005, ge=0, le=0.2)
    zero_price_rate: float = Field(0.0005, ge=0, le=0.2)
    outlier_quantity_rate: float = Field(0.0002, ge=0, le=0.2)
    formula_text_rate: float = Field(0.0005, ge=0, le=0.2)


class GenerateParams(Section):
    """Size, span and seed of the embedded simulation."""

    seed: int = 42
    # ids: 10000..999999 up to 900,000 customers, 7 digits (1000000..9999999) above
    n_customers: int = Field(20000, ge=1, le=9_000_000)
    start: IsoDate = dt.date(2023, 1, 1)
    end: IsoDate = dt.date(2024, 12, 31)
    dirty: DirtyRates = DirtyRates()


#: Default record-length limit of the text reader (``clean.max_record_bytes``).
MAX_RECORD_BYTES = 2**20


class CleanParams(Section):
    """Cleaning rules that are tuned per run (per-source rules live in configs/sources/)."""

    as_of: OptionalIsoInstant = None
    missing_customer_id_warn_rate: float = Field(0.25, ge=0, le=1)
    # A record (all its lines) longer than this many bytes is quarantined as record_too_long
    # without being held in memory: no real export row comes near 1 MiB (Online Retail's are
    # under 200 bytes), while a missing line break or an unclosed quote would otherwise make one
    # record of the rest of the file.
    max_record_bytes: int = Field(MAX_RECORD_BYTES, ge=1)
    # Clean (and score) fail when more than this share of a table's lines is rejected, naming
    # the top reasons: a date format or delimiter that matches nothing is a broken mapping,
    # not a file of bad rows. 1 = never fail.
    max_reject_share: float = Field(0.5, ge=0, le=1)


#: ``features.active_within_days: any``: every customer with an order before the cutoff.
ANY = "any"


class FeaturesParams(Section):
    """Cutoff grid, population and partitioning of the feature panel.

    ``None`` in ``step_months`` (with ``step_days``), ``min_history_days`` and
    ``active_within_days`` means "chosen from the data by the features stage"
    (:mod:`pipeline.features.defaults`); the stage passes on a copy with the chosen values.
    """

    first_cutoff: OptionalIsoDate = None
    last_cutoff: OptionalIsoDate = None
    # Step of the cutoff grid in months from a month start; step_days (in days, counted back
    # from the latest complete cutoff) wins when set; both null = chosen from the data.
    step_months: int | None = Field(None, ge=1)
    step_days: int | None = Field(None, ge=1)
    # End of the observed period (exclusive); null = last order date + 1 day.
    data_end: OptionalIsoDate = None
    # The first cutoff is at least this many days after the first order; null = from the data.
    min_history_days: int | None = Field(None, ge=0)
    # Population: an order before the cutoff, the last within this many days of it; "any" =
    # no recency filter; null = from the data.
    active_within_days: Annotated[int, Field(ge=1)] | Literal["any"] | None = None
    # A population filter that removes more than this share of the customers it sees (at the
    # test cutoff or the scoring date) is logged as a warning.
    max_filtered_share: float = Field(0.25, ge=0, le=1)
    windows_days: tuple[int, ...] = (30, 90, 180, 365)
    validation_cutoffs: int = Field(1, ge=1)
    partitions: int = Field(4, ge=1)
    workers: int = Field(2, ge=1)


#: Target names become panel columns, output columns, folder names and MLflow model names.
TARGET_NAME = names.NAME


class TargetParams(Section):
    """One prediction target: its label rule and horizon (see :mod:`pipeline.targets`)."""

    # no_order_within: 1 when the customer places no order in [cutoff, cutoff + horizon);
    # order_within: 1 when they place at least one; spend_within: the customer's spend in it.
    rule: Literal["no_order_within", "order_within", "spend_within"]
    # null = chosen by the features stage from the data (pipeline.features.defaults): from
    # the customers' gaps between purchases for a binary rule, the longest horizon that still
    # gives a train / valid / test split for spend_within.
    horizon_days: int | None = Field(default=None, ge=1)


def _default_targets() -> dict[str, TargetParams]:
    return {
        "churn": TargetParams(rule="no_order_within"),
        "repurchase": TargetParams(rule="order_within"),
        "value": TargetParams(rule="spend_within"),
    }


class LabelsParams(Section):
    """The targets the pipeline can predict: one definition each (name -> rule, horizon)."""

    targets: dict[str, TargetParams] = Field(default_factory=_default_targets, min_length=1)

    @field_validator("targets")
    @classmethod
    def _names(cls, value: dict[str, TargetParams]) -> dict[str, TargetParams]:
        bad = [name for name in value if not re.fullmatch(TARGET_NAME, name)]
        if bad:
            raise ValueError(f"target names must match {TARGET_NAME}: {bad}")
        return value


class LgbmParams(Section):
    """LightGBM hyper-parameters passed through to ``lightgbm.train``."""

    model_config = ConfigDict(frozen=True, extra="allow")

    learning_rate: float = 0.05
    num_leaves: int = 31
    min_data_in_leaf: int = 100
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    bagging_freq: int = 1
    lambda_l2: float = 1.0


class TuningParams(Section):
    """Optuna search on the validation split (pipeline/modeling/tuning.py)."""

    enabled: bool = False
    n_trials: int = Field(20, ge=1)
    # Safety cap per target; a run that hits it is no longer reproducible (warned).
    timeout_seconds: float | None = Field(600, gt=0)


class QualityGate(Section):
    """Thresholds that fail the train stage."""

    max_auc: float = 0.99
    min_auc_margin_over_recency: float = 0.0


class TrainParams(Section):
    """Model training for every target."""

    # Binary targets to train (each defined under labels.targets), one DVC train stage each.
    targets: tuple[str, ...] = ("churn", "repurchase")
    # The customer-value target (a spend_within rule; stage train_value); null = none.
    value_target: str | None = "value"
    # Value model designs compared on the validation cutoff (the best ranking is kept):
    # tweedie = one LightGBM model of spend; tweedie_run_rate / tweedie_btyd = the same,
    # boosted from last year's spend run rate / from the BTYD forecast; two_part = P(buy) x
    # E[spend | buy] (pipeline/modeling/value.py).
    value_models: tuple[Literal["tweedie", "tweedie_run_rate", "tweedie_btyd", "two_part"], ...] = (
        Field(("tweedie", "tweedie_run_rate", "tweedie_btyd", "two_part"), min_length=1)
    )
    tweedie_variance_power: float = Field(1.5, gt=1, lt=2)
    # Targets whose model also gets the BTYD features (P(alive), expected orders in the
    # target's horizon; configs/features.yaml concept buying_pattern; docs/modeling.md).
    btyd_features: tuple[str, ...] = ("churn", "repurchase")
    # Window spend is capped at this quantile of the training buyers' spend for fitting and
    # for the value metrics (a few bulk or mistyped lines otherwise hold most of the spend).
    value_cap_quantile: float = Field(0.99, gt=0.5, le=1)
    seed: int = 42
    # Fixed thread count: with deterministic=true the same inputs give the same model bytes.
    num_threads: int = Field(1, ge=1)
    calibration: Literal["isotonic", "platt"] = "isotonic"
    class_weight: Literal["none", "balanced"] = "none"
    # Row weights of the training cutoffs: none, or customer = 1 / (the customer's training
    # rows), so that a dense cutoff grid does not count a long-standing customer many times.
    sample_weight: Literal["none", "customer"] = "none"
    # Monotone constraints from the `direction` of each feature in configs/features.yaml.
    monotone: bool = True
    num_boost_round: int = Field(2000, ge=1)
    early_stopping_rounds: int = Field(50, ge=1)
    lgbm: LgbmParams = LgbmParams()
    tuning: TuningParams = TuningParams()
    quality_gate: QualityGate = QualityGate()

    def model_targets(self) -> tuple[str, ...]:
        """Return every trained target: ``targets`` then ``value_target`` (scoring order)."""
        value = () if self.value_target is None else (self.value_target,)
        return (*self.targets, *value)


class MlflowParams(Section):
    """Where runs and models are tracked."""

    tracking_uri: str = "sqlite:///mlflow.db"
    experiment: str = "loyalty-pipeline"
    required: bool = True
    # Seconds to wait for a SQLite store that another writer holds locked, then fail in one
    # line saying so (or warn, when not required). MLflow's own per-statement wait (20 s) still
    # applies to a lock taken while a run is being logged.
    lock_timeout_s: float = Field(30.0, gt=0, le=3600)
    # A new version takes the alias `champion` only when its test score beats the champion's,
    # on the same test cutoff, by more than this, in the target's ranking metric (ROC AUC; the
    # value model's normalized Gini). `dvc exp run` never promotes (pipeline/tracking/promotion).
    promotion_margin: float = Field(0.002, ge=0, le=1)
    # False: the pipeline never moves `champion` (only `loyalty promote` does).
    auto_promote: bool = True


class EvaluateParams(Section):
    """The quality scoreboard (``loyalty evaluate``, pipeline/modeling/scoreboard.py)."""

    # Early-warning population: customers whose last order is within this many days before
    # the cutoff (recency gives nothing away among them).
    early_warning_days: int = Field(30, ge=1)
    # Paired bootstrap over customers: resamples and seed (fixed: the same figures every run).
    bootstrap: int = Field(1000, ge=100)
    seed: int = 0


class ExplainParams(Section):
    """SHAP explanation limits."""

    max_rows: int = Field(20000, ge=1)
    top_reasons: int = Field(3, ge=1, le=10)


class ReportParams(Section):
    """HTML report options (definitions in docs/explanations.md)."""

    # Rows of the contact list shown on the overview (contact_list.csv has them all).
    top_customers: int = Field(20, ge=1)
    # Customers in the contact list (reports/site/contact_list.csv), most value at risk first:
    # a count (1 or more) or a share of the customers scored (below 1).
    contact_budget: float = Field(0.05, gt=0)

    @field_validator("contact_budget")
    @classmethod
    def _count_or_share(cls, value: float) -> float:
        if value >= 1 and value != int(value):
            raise ValueError(f"a count of customers (1 or more) or a share below 1, got {value}")
        return value

    top_features: int = Field(12, ge=1)
    dependence_plots: int = Field(4, ge=0)


#: The ``business.actions`` key of the action for a customer no lever speaks for.
NO_LEVER = "none"
DEFAULT_ACTIONS = {
    "service": "Service call: resolve the complaint",
    "delivery": "Apology and a delivery voucher",
    "satisfaction": "Product follow-up: ask how their last purchase went",
    "product_quality": "Product follow-up on what they returned",
    "price": "Targeted offer",
    "relationship": "Personal call: invite them to the loyalty programme",
    NO_LEVER: "Win-back reminder",
}


class BusinessParams(Section):
    """Business rules applied to scored customers (:mod:`pipeline.business`); one key each."""

    # Which target's probability gives the churn risk band and value at risk, and which the
    # loyalty tier (both must be defined under labels.targets).
    risk_target: str = "churn"
    tier_target: str = "repurchase"
    # Churn risk bands: high >= risk_high (a "predicted churner"), medium >= risk_medium.
    risk_high: float = Field(0.5, gt=0, le=1)
    risk_medium: float = Field(0.2, ge=0, lt=1)
    # Loyalty tier from the tier target's probability: high >= tier_high, medium >= tier_medium.
    tier_high: float = Field(0.7, gt=0, le=1)
    tier_medium: float = Field(0.3, ge=0, lt=1)
    # Expected value = the value target's expected spend (value at risk = churn p x it);
    # value tier: high >= the high_value_quantile of the value model's reference population
    # (these are the high-value customers), medium >= value_medium_quantile, else low.
    value_target: str | None = "value"
    high_value_quantile: float = Field(0.8, gt=0, lt=1)
    value_medium_quantile: float = Field(0.5, gt=0, lt=1)
    # What to do about a customer at risk, by the concept of their strongest actionable reason
    # (pipeline.actions). A concept listed here is a lever (what the business can change); the
    # others (recency, frequency, spend, buying pattern) are signals that a customer is leaving.
    # `none`: the action when no lever raises the customer's risk.
    actions: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_ACTIONS))

    @field_validator("actions")
    @classmethod
    def _has_a_fallback(cls, value: dict[str, str]) -> dict[str, str]:
        if NO_LEVER not in value:
            raise ValueError(f"needs a `{NO_LEVER}` entry: the action when no lever applies")
        empty = sorted(k for k, v in value.items() if not str(v).strip())
        if empty:
            raise ValueError(f"empty action for {', '.join(empty)}")
        return value

    @property
    def levers(self) -> tuple[str, ...]:
        """The concepts the business can change: those with an action."""
        return tuple(k for k in self.actions if k != NO_LEVER)

    @model_validator(mode="after")
    def _bands(self) -> BusinessParams:
        if self.risk_medium > self.risk_high or self.tier_medium > self.tier_high:
            raise ValueError("risk_medium/tier_medium must not exceed risk_high/tier_high")
        if self.value_medium_quantile > self.high_value_quantile:
            raise ValueError("value_medium_quantile must not exceed high_value_quantile")
        return self


#: Reason-code shares are whole tenths of a percent: each model ships the cut of every one
#: (``pipeline.business.ReasonCuts``).
SHARE_STEPS = 1000


def share_step(share: float) -> int:
    """Return ``share`` in tenths of a percent (0 .. 1000); refuse a share off that grid."""
    step = round(share * SHARE_STEPS)
    if not 0 <= step <= SHARE_STEPS or abs(share * SHARE_STEPS - step) > 1e-6:
        raise ValueError(f"a reason-code share is a multiple of 0.001 in [0, 1], got {share}")
    return int(step)


class ScoreParams(Section):
    """Batch scoring options."""

    engine: Literal["local", "spark"] = "local"
    partitions: int = Field(8, ge=1)
    workers: int = Field(2, ge=1)
    # Reason codes for customers at or above the risk model's cut of this share: exactly this
    # share of its reference population (ties broken by raw margin, then customer hash; the
    # cuts ship with the model, in steps of 0.001: pipeline.business.ReasonCuts).
    reasons_top_share: float = Field(0.2, ge=0, le=1)
    # ... and for customers whose value at risk is at least this (in the data's currency), so
    # that the customers with the most value at risk, whom the report's contact list ranks
    # first, all have reasons and an action. null = the value at risk of a high-value customer
    # at the medium risk line: the value model's high-value line x business.risk_medium.
    reasons_min_value_at_risk: float | None = Field(None, ge=0)
    format: Literal["parquet", "csv"] = "parquet"
    spark_master: str = "local[*]"
    # An explicit --as-of may be this many days after the end of the orders (a nightly export
    # that ends on a quiet day); later, or on or before the first order, is an error unless
    # `loyalty score --allow-outside-data`.
    as_of_slack_days: int = Field(7, ge=0, le=366)
    # One warning per run when a model input or score drifted this far (PSI) from the model's
    # test cutoff: 0.1 is the customary line of a moderate shift, 0.25 of a large one.
    drift_warn_psi: float = Field(0.25, gt=0)

    @field_validator("reasons_top_share")
    @classmethod
    def _on_the_shipped_grid(cls, value: float) -> float:
        share_step(value)
        return value


class Params(Section):
    """All of ``params.yaml``."""

    data: DataParams = DataParams()
    generate: GenerateParams = GenerateParams()
    clean: CleanParams = CleanParams()
    features: FeaturesParams = FeaturesParams()
    labels: LabelsParams = LabelsParams()
    train: TrainParams = TrainParams()
    mlflow: MlflowParams = MlflowParams()
    evaluate: EvaluateParams = EvaluateParams()
    explain: ExplainParams = ExplainParams()
    report: ReportParams = ReportParams()
    business: BusinessParams = BusinessParams()
    score: ScoreParams = ScoreParams()

    @model_validator(mode="after")
    def _targets_defined(self) -> Params:
        defined = set(self.labels.targets)
        used = {
            "train.targets": set(self.train.targets),
            "train.value_target": (
                set() if self.train.value_target is None else {self.train.value_target}
            ),
            "business.risk_target": {self.business.risk_target},
            "business.tier_target": {self.business.tier_target},
            "business.value_target": (
                set() if self.business.value_target is None else {self.business.value_target}
            ),
        }
        for key, named in used.items():
            unknown = sorted(named - defined)
            if unknown:
                raise ValueError(f"{key}: {unknown} not defined under labels.targets")
        rules = {name: spec.rule for name, spec in self.labels.targets.items()}
        not_binary = [name for name in self.train.targets if rules[name] == "spend_within"]
        if not_binary:
            raise ValueError(
                f"train.targets: {not_binary} are spend_within (value) targets; "
                "set train.value_target instead"
            )
        value = self.train.value_target
        if value is not None and rules[value] != "spend_within":
            raise ValueError(f"train.value_target: {value!r} must have rule spend_within")
        return self


def parse_params(raw: Any, origin: str = "params.yaml") -> Params:
    """Validate a parsed params mapping; report the first problem on one line."""
    if raw is None:
        raw = {}
    try:
        return Params.model_validate(io.as_mapping(raw, origin))
    except ValidationError as exc:
        raise ConfigError.from_validation(origin, exc) from exc


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate ``params.yaml``; a missing file gives the defaults."""
    path = Path(path)
    if not path.exists():
        return Params()
    return parse_params(io.read_yaml(path), str(path))
