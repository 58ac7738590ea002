"""The predictor: a trained model rebuilt from its artefacts, without pickle.

``models/<target>/`` holds ``model.txt`` (LightGBM text), ``calibration.json`` and
``features.json``. :func:`load_predictor` reads them (through :mod:`pipeline.io`) and returns a
:class:`Predictor`, the one object that the explain, score and MLflow pyfunc code use:

- ``predict_proba(frame)``: calibrated probabilities (1-D ``float64`` array);
- ``raw_margin(frame)``: LightGBM raw scores (log-odds), before calibration;
- ``contributions(frame)``: exact TreeSHAP contributions (``pred_contrib``) in log-odds, one
  column per feature plus ``base_value``; each row sums to ``raw_margin``.

Every method first calls :meth:`Predictor.prepare`, which enforces the training contract:
columns reordered by the stored feature list; a missing feature is an error naming it; extra
columns are ignored with a warning; nullable/arrow dtypes are cast to ``float64``; category
levels unseen in training become missing (counted and logged), never re-encoded per batch.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from pipeline import io
from pipeline.errors import InputError, ModelError
from pipeline.modeling.btyd_features import NAMES as DERIVED
from pipeline.modeling.btyd_features import BtydFeatures, BtydSpend
from pipeline.modeling.calibration import apply_calibration
from pipeline.modeling.model_text import check_model_text

logger = logging.getLogger(__name__)

MODEL_FILE = "model.txt"
#: The P(buy) part of a two-part value model (absent for every other model).
BUY_MODEL_FILE = "buy_model.txt"
CALIBRATION_FILE = "calibration.json"
FEATURES_FILE = "features.json"
BASE_VALUE = "base_value"


def snapshot_contract(summary: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return what the model's rows were built with (from ``summary.json``), to ship.

    ``windows_days`` and ``population`` (``{"active_within_days": 365}``, a number of days or
    ``"any"``): the scorer builds its snapshot on the population the model was trained and
    tested on when ``features.active_within_days`` is null (chosen from the data by the
    features stage). A summary without a population (an older features run) ships none.
    """
    summary = summary or {}
    out: dict[str, Any] = {"windows_days": list(summary.get("windows_days", []) or [])}
    population = summary.get("population") or {}
    if population.get("active_within_days") is not None:
        out["population"] = {"active_within_days": population["active_within_days"]}
    return out


def _major(version: str) -> str:
    return str(version).lstrip("v").split(".")[0]


class Predictor:
    """A LightGBM booster with its calibrator and feature contract."""

    def __init__(
        self,
        model_text: str,
        calibration: dict[str, Any],
        features: dict[str, Any],
        buy_model_text: str | None = None,
        origin: str | Path | None = None,
    ) -> None:
        # ``origin``: the model folder, named in every "corrupted model" message
        where = {
            name: str(Path(origin) / name) if origin is not None else name
            for name in (MODEL_FILE, BUY_MODEL_FILE, CALIBRATION_FILE, FEATURES_FILE)
        }
        _check_json(calibration, features, where)
        trained_with = str(features.get("lightgbm_version", "unknown"))
        if _major(trained_with) != _major(lgb.__version__):
            raise ModelError(
                f"{where[FEATURES_FILE]}: model trained with LightGBM {trained_with}, installed "
                f"{lgb.__version__}: major versions differ; retrain the model"
            )
        self.booster = _booster(model_text, where[MODEL_FILE])
        # A two-part value model: P(buy) x E[spend | buy] (see pipeline.modeling.value).
        self.buy_booster = (
            None if buy_model_text is None else _booster(buy_model_text, where[BUY_MODEL_FILE])
        )
        if features.get("value_model") == "two_part" and self.buy_booster is None:
            raise ModelError(
                f"corrupted model {where[BUY_MODEL_FILE]}: a two-part value model without it"
            )
        self.calibration = calibration
        self.features = features
        self.feature_names: list[str] = [f["name"] for f in features["features"]]
        if self.booster.feature_name() != self.feature_names:
            raise ModelError(
                f"corrupted model {where[MODEL_FILE]}: it and {FEATURES_FILE} list different "
                "features"
            )
        # Features the model derives from the others (BTYD), with their shipped parameters.
        self._derived = (
            BtydFeatures.from_dict(features["derived"]) if features.get("derived") else None
        )
        self._levels: dict[str, list[Any]] = {
            f["name"]: list(f["levels"]) for f in features["features"] if f["dtype"] == "category"
        }

    def derive(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Return ``frame`` with the features the model derives (BTYD), when it has any."""
        if self._derived is None or all(name in frame.columns for name in DERIVED):
            return frame
        return self._derived.add(frame)

    def prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Return the model's input frame: stored column order and training dtypes."""
        frame = self.derive(frame)
        missing = [name for name in self.feature_names if name not in frame.columns]
        if missing:
            raise InputError(
                f"input is missing feature(s) the model needs: {', '.join(missing[:10])}"
            )
        extra = [c for c in frame.columns if c not in set(self.feature_names)]
        if extra:
            logger.debug("ignoring %d column(s) the model does not use: %s", len(extra), extra[:10])
            known = _KNOWN_NON_FEATURES | {self.features.get("label")}
            non_key = [c for c in extra if c not in known and not c.startswith("split_")]
            if non_key:
                logger.warning("ignoring %d extra column(s): %s", len(non_key), non_key[:10])
        columns: dict[str, Any] = {}
        for name in self.feature_names:
            series = frame[name]
            if name in self._levels:
                columns[name] = self._as_category(name, series)
            else:
                columns[name] = _as_float(name, series)
        return pd.DataFrame(columns, index=frame.index)

    def _as_category(self, name: str, series: pd.Series) -> pd.Categorical:
        levels = self._levels[name]
        as_text = {str(level): level for level in levels}
        values = series.astype("string")
        known = values.isin(list(as_text))
        unseen = int((values.notna() & ~known).sum())
        if unseen:
            logger.warning(
                "%s: %d value(s) with a level unseen in training set to missing", name, unseen
            )
        mapped = [
            as_text[v] if ok else None
            for v, ok in zip(values.tolist(), known.tolist(), strict=True)
        ]
        return pd.Categorical(mapped, categories=levels)

    def unseen_levels(self, frame: pd.DataFrame) -> dict[str, int]:
        """Count, per categorical feature, values whose level was unseen in training."""
        counts: dict[str, int] = {}
        for name, levels in self._levels.items():
            values = frame[name].astype("string")
            counts[name] = int((values.notna() & ~values.isin([str(v) for v in levels])).sum())
        return counts

    def raw_margin(self, frame: pd.DataFrame) -> np.ndarray:
        """Raw LightGBM scores (log-odds) in input row order."""
        x = self.prepare(frame)
        return np.asarray(self.booster.predict(x, raw_score=True), dtype="float64")

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities of the positive class, in input row order."""
        return apply_calibration(self.calibration, self.raw_margin(frame))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Return the prediction: a probability, or for a value model expected spend.

        Value models have a log link: ``scale x exp(margin)``, times P(buy) for a two-part one.
        """
        if self.calibration.get("method") != "log_link":
            return self.predict_proba(frame)
        x = self.prepare(frame)
        margin = np.asarray(self.booster.predict(x, raw_score=True), dtype="float64")
        if self.features.get("value_offset"):
            margin = margin + value_offset(self.features["value_offset"]).log_offset(x)
        value = np.exp(margin)
        if self.buy_booster is not None:
            value *= np.asarray(self.buy_booster.predict(x), dtype="float64")
        return float(self.calibration["scale"]) * value

    def contributions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Exact TreeSHAP contributions in log-odds; columns = features + ``base_value``."""
        x = self.prepare(frame)
        values = np.asarray(self.booster.predict(x, pred_contrib=True), dtype="float64")
        return pd.DataFrame(values, columns=[*self.feature_names, BASE_VALUE], index=frame.index)


@dataclass(frozen=True)
class RunRate:
    """Last year's spend as a run rate over the horizon: ``min(feature x scale, cap)``.

    A value model boosted from it adds ``log(run rate + floor)`` to its raw margin; the
    spec ships in ``features.json`` (``value_offset``), so scoring computes the same offset.
    """

    feature: str
    scale: float
    cap: float
    floor: float

    def spend(self, frame: pd.DataFrame) -> np.ndarray:
        """Return the run rate of each row (missing spend counts as 0)."""
        if self.feature not in frame.columns:
            raise InputError(f"the run rate needs feature {self.feature}, absent from the input")
        values = frame[self.feature].to_numpy(dtype="float64", na_value=0.0)
        return np.minimum(np.nan_to_num(values) * self.scale, self.cap)

    def log_offset(self, frame: pd.DataFrame) -> np.ndarray:
        """Return ``log(run rate + floor)``, the starting margin of each row."""
        return np.log(self.spend(frame) + self.floor)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``inf`` cap as null)."""
        return {
            "kind": "run_rate",
            "feature": self.feature,
            "scale": self.scale,
            "cap": self.cap if np.isfinite(self.cap) else None,
            "floor": self.floor,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunRate:
        """Read the ``value_offset`` block of ``features.json``."""
        cap = raw.get("cap")
        return cls(
            str(raw["feature"]),
            float(raw["scale"]),
            np.inf if cap is None else float(cap),
            float(raw["floor"]),
        )


def value_offset(raw: dict[str, Any]) -> RunRate | BtydSpend:
    """Read a value model's ``value_offset``: last year's run rate, or BTYD expected spend."""
    return BtydSpend.from_dict(raw) if raw.get("kind") == "btyd" else RunRate.from_dict(raw)


def _booster(text: str, where: str) -> lgb.Booster:
    """Parse a LightGBM text model once its structure is checked (LightGBM trusts its input)."""
    try:
        check_model_text(text)
    except ValueError as exc:
        raise ModelError(f"corrupted model {where}: {exc}") from exc
    try:
        return lgb.Booster(model_str=text)
    except (lgb.basic.LightGBMError, ValueError, MemoryError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"corrupted model {where}: LightGBM cannot read it ({first})") from exc


_CALIBRATION_KEYS = {"isotonic": ("x", "y"), "platt": ("a", "b"), "log_link": ("scale",)}


def _check_json(calibration: Any, features: Any, where: dict[str, str]) -> None:
    """Refuse a calibration or feature contract without what the predictor reads of it."""
    bad_calibration = (
        "not a JSON object"
        if not isinstance(calibration, dict)
        else f"unknown method {calibration.get('method')!r}"
        if calibration.get("method") not in _CALIBRATION_KEYS
        else next(
            (
                f"method {calibration['method']} without {key!r}"
                for key in _CALIBRATION_KEYS[calibration["method"]]
                if key not in calibration
            ),
            None,
        )
    )
    if bad_calibration:
        raise ModelError(f"corrupted model {where[CALIBRATION_FILE]}: {bad_calibration}")
    listed = features.get("features") if isinstance(features, dict) else None
    if not isinstance(listed, list) or not listed:
        raise ModelError(f"corrupted model {where[FEATURES_FILE]}: no 'features' list")
    for item in listed:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("name"), str)
            or item.get("dtype") not in ("float64", "category")
            or (item["dtype"] == "category" and not isinstance(item.get("levels"), list))
        ):
            raise ModelError(
                f"corrupted model {where[FEATURES_FILE]}: a 'features' entry without a name, "
                "a dtype float64|category, or a category's levels"
            )


#: Columns of a panel or snapshot that are never features (with the model's own label).
_KNOWN_NON_FEATURES = frozenset({"customer_id", "cutoff", "split", "as_of"})


def _as_float(name: str, series: pd.Series) -> np.ndarray:
    """Cast a numeric column (numpy, nullable or arrow dtype) to float64 with NaN for missing."""
    if isinstance(series.dtype, pd.CategoricalDtype) or not (
        pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)
    ):
        numeric = pd.to_numeric(series.astype("string"), errors="coerce")
        bad = int((numeric.isna() & series.notna()).sum())
        if bad:
            raise InputError(f"feature {name}: {bad} non-numeric value(s) in a numeric feature")
        series = numeric
    return series.to_numpy(dtype="float64", na_value=np.nan)


def load_predictor(path: str | Path) -> Predictor:
    """Build a :class:`Predictor` from a model folder (or its ``model.txt``); refuse pickle."""
    path = Path(path)
    io.refuse_pickle(path)
    folder = path.parent if path.is_file() else path
    if not folder.is_dir():
        raise ModelError(f"{path}: model folder not found")
    for item in folder.iterdir():
        if item.suffix.lower() in io.PICKLE_SUFFIXES:
            raise ModelError(f"{item}: refusing a model folder that contains a pickle/joblib file")
    buy = folder / BUY_MODEL_FILE
    return load_predictor_files(
        folder / MODEL_FILE,
        folder / CALIBRATION_FILE,
        folder / FEATURES_FILE,
        buy if buy.exists() else None,
    )


def load_predictor_files(
    model_path: str | Path,
    calibration_path: str | Path,
    features_path: str | Path,
    buy_model_path: str | Path | None = None,
) -> Predictor:
    """Build a :class:`Predictor` from its artefact files (used by the MLflow pyfunc)."""
    paths = [model_path, calibration_path, features_path]
    for item in paths if buy_model_path is None else [*paths, buy_model_path]:
        io.refuse_pickle(item)
    model_text = _read_model_text(Path(model_path))
    calibration = _read_model_json(Path(calibration_path))
    features = _read_model_json(Path(features_path))
    buy = None if buy_model_path is None else _read_model_text(Path(buy_model_path))
    # messages name the files where they are (a pyfunc's artefacts may sit in several folders)
    folders = {Path(p).parent for p in paths}
    origin = folders.pop() if len(folders) == 1 else None
    return Predictor(model_text, calibration, features, buy, origin)


def _read_model_text(path: Path) -> str:
    try:
        with io.open_binary(path) as handle:
            return handle.read().decode("utf-8")
    except FileNotFoundError as exc:
        raise ModelError(f"corrupted model {path.parent}: {path.name} not found") from exc
    except UnicodeDecodeError as exc:
        raise ModelError(f"corrupted model {path}: not LightGBM text (not UTF-8)") from exc


def _read_model_json(path: Path) -> Any:
    if not path.exists():
        raise ModelError(f"corrupted model {path.parent}: {path.name} not found")
    try:
        return io.read_json(path)
    except InputError as exc:
        raise ModelError(f"corrupted model {exc.message}") from exc
    except UnicodeDecodeError as exc:
        raise ModelError(f"corrupted model {path}: not JSON text (not UTF-8)") from exc
