"""Reason codes: each customer's top drivers of risk, as sentences a marketer can read.

A reason is a *concept* (recency, satisfaction, service, ...: ``concept`` in the feature
catalog, :mod:`pipeline.features.catalog`) that raises the customer's risk, told once, by its
strongest risk-raising feature that has something true to say:

1. a feature speaks only if its SHAP contribution raises risk and its sentence can be filled
   and reads as a reason (:func:`pipeline.sentences.speech`): every field known, and the
   customer on the risky side of what the sentence compares them with (the reference
   population's median, share with none, or their own habit), as shown rounded. Otherwise it
   is silent for that customer,
   and so is a feature without a ``reason`` template; a missing value speaks only through the
   catalog's ``reason_missing`` sentence ("No review yet; 62% of customers have written one");
2. a feature whose entry has ``joins: <concept>`` belongs to that concept, always or (with
   ``joins_when: zero``) where its value is 0: no order in the last 90 days, and BG/NBD's
   "may have stopped buying", are the recency fact "No order for 182 days", so it is said
   once (by the concept's own feature when one speaks, else by the joined one), not again as
   "Orders in the last 90 days: 0";
3. each concept's strength is its strongest speaking member's contribution; the ``top_k``
   strongest concepts are the reasons, each in the words of its strongest own feature.

Comparisons come from the model's reference population
(:func:`pipeline.sentences.comparisons` of the :class:`pipeline.business.Reference` shipped in
``features.json``), never from the batch.

Pure and vectorised over rows (the scorer calls it on hundreds of thousands of customers):
which features may speak is decided with numpy per feature, and each sentence template is
filled once per (rank, feature) group of rows.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.features.catalog import Catalog, load_catalog, template_fields
from pipeline.sentences import (
    MISSING,
    REASON,
    SILENT,
    Comparison,
    FeatureInfo,
    column_values,
    columns_used,
    render_reason,
    speech,
)

logger = logging.getLogger(__name__)

NOT_FEATURES = frozenset({"customer_id", "cutoff", "base_value", "split", "as_of"})


@dataclass(frozen=True)
class FeatureDictionary:
    """The feature catalog as the report and the reason codes read it.

    A thin view: names are resolved by :meth:`Catalog.lookup` (``orders_count_90d`` matches
    the ``orders_count_{window}d`` entry), and a column the catalog does not list gets a plain
    default (its name in words, concept ``other``, no sentence) rather than an error, so a
    model trained on an extra column still gets reasons from its other features.
    """

    catalog: Catalog

    def concepts(self, names: Sequence[str] | None = None) -> dict[str, str]:
        """Map feature name -> concept group (for ``names``, windows resolved, if given)."""
        if names is None:
            return {spec.name: spec.concept for spec in self.catalog.features}
        return {name: self.info(name).concept for name in names}

    def label(self, concept: str) -> str:
        """Readable name of a concept group."""
        return self.catalog.label(concept)

    def info(self, name: str) -> FeatureInfo:
        """Entry of ``name``, or a silent default when the catalog does not list it."""
        spec = self.catalog.lookup(name)
        if spec is None:
            return FeatureInfo(name, description=name.replace("_", " "))
        return FeatureInfo.from_spec(spec)


def load_dictionary(path: str | Path) -> FeatureDictionary:
    """Read and validate the feature dictionary (``configs/features.yaml``)."""
    return FeatureDictionary(load_catalog(path))


def _voices(
    infos: Sequence[FeatureInfo], features: pd.DataFrame
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Return the concepts, each (row, feature)'s concept index and whether it joined it.

    A feature's concept is its catalog concept, except where its entry ``joins`` another
    (always, or where its value is 0 with ``joins_when: zero``): there it belongs to the
    joined concept (the same fact, told once).
    """
    concepts = list(dict.fromkeys(info.concept for info in infos))
    for info in infos:
        if info.joins and info.joins not in concepts:
            concepts.append(info.joins)
    index = {name: i for i, name in enumerate(concepts)}
    n = len(features)
    voice = np.empty((n, len(infos)), dtype=np.int64)
    joined = np.zeros((n, len(infos)), dtype=bool)
    for j, info in enumerate(infos):
        voice[:, j] = index[info.concept]
        if info.joins is None:
            continue
        where = np.ones(n, dtype=bool)
        if info.joins_when == "zero":
            values = column_values(features, info.name)
            if values is None or values.dtype == object:
                continue
            where = values == 0.0
        voice[where, j] = index[info.joins]
        joined[where, j] = True
    return concepts, voice, joined


def reason_codes(
    features: pd.DataFrame,
    contributions: pd.DataFrame,
    dictionary: FeatureDictionary,
    top_k: int = 3,
    direction: float = 1.0,
    references: Mapping[str, Comparison] | None = None,
    with_features: bool = False,
) -> pd.DataFrame:
    """Top ``top_k`` concepts raising each customer's risk, as sentences (module docstring).

    ``features`` and ``contributions`` are aligned by position (row i of one is row i of the
    other); ``contributions`` holds one column per feature (log-odds; keys and ``base_value``
    are ignored). ``direction`` is +1 when a positive contribution means more risk (churn) and
    -1 when it means less (repurchase: the risk is not buying again). ``references`` are the
    model's :func:`pipeline.sentences.comparisons`. A customer with fewer concepts that raise
    risk and can be told gets empty (``<NA>``) reasons. Returns ``reason_1..k`` (and, when
    ``with_features``, ``reason_feature_1..k``, the speaking feature, and
    ``reason_concept_1..k``, the concept it speaks for) on the index of ``features``.
    """
    if top_k < 1:
        raise ValueError("top_k must be >= 1")
    if len(features) != len(contributions):
        raise ValueError(f"{len(features)} feature rows but {len(contributions)} contribution rows")
    refs = references or {}
    names = [c for c in contributions.columns if c not in NOT_FEATURES]
    infos = [dictionary.info(name) for name in names]
    n = len(features)
    risk = contributions[names].to_numpy(dtype="float64") * float(direction)
    choice = _choices(features, infos, risk, refs)
    concepts, weight, speaker, order, choice = _ranked(features, infos, names, risk, choice, top_k)
    rows_idx = np.arange(n)
    out: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for rank in range(top_k):
        sentences = np.full(n, None, dtype=object)
        chosen = np.full(n, None, dtype=object)
        told = np.full(n, None, dtype=object)
        if rank < order.shape[1]:
            concept = order[:, rank]
            valid = np.isfinite(weight[rows_idx, concept])
            feature = speaker[rows_idx, concept]
            for j in np.unique(feature[valid]):
                info = infos[j]
                used = [c for c in columns_used(info) if c in features.columns]
                for kind, template in ((REASON, info.reason), (MISSING, info.reason_missing)):
                    hit = np.flatnonzero(valid & (feature == j) & (choice[rows_idx, j] == kind))
                    if hit.size and template is not None:
                        rows = features[used].iloc[hit]
                        sentences[hit] = render_reason(template, info, rows, refs.get(info.name))
                chosen[valid & (feature == j)] = names[j]
            told[valid] = np.asarray(concepts, dtype=object)[concept[valid]]
        out[f"reason_{rank + 1}"] = pd.array(sentences, dtype="string")
        extra[f"reason_feature_{rank + 1}"] = pd.array(chosen, dtype="string")
        extra[f"reason_concept_{rank + 1}"] = pd.array(told, dtype="string")
    if with_features:
        out.update(extra)
    return pd.DataFrame(out, index=features.index)


def _choices(
    features: pd.DataFrame,
    infos: Sequence[FeatureInfo],
    risk: np.ndarray,
    references: Mapping[str, Comparison],
) -> np.ndarray:
    """:func:`speech` of each (row, feature) whose contribution raises risk (else SILENT)."""
    raises = np.isfinite(risk) & (risk > 0)
    choice = np.zeros(risk.shape, dtype=np.int8)
    for j, info in enumerate(infos):
        hit = np.flatnonzero(raises[:, j])
        if hit.size and info.reason is not None:
            used = [c for c in columns_used(info) if c in features.columns]
            choice[hit, j] = speech(info, features[used].iloc[hit], references.get(info.name))
    return choice


def _quotes(infos: Sequence[FeatureInfo], names: Sequence[str]) -> dict[tuple[int, int], list[int]]:
    """Map (feature, template kind) -> the other features whose value that sentence states."""
    index = {name: j for j, name in enumerate(names)}
    out: dict[tuple[int, int], list[int]] = {}
    for j, info in enumerate(infos):
        for kind, template in ((REASON, info.reason), (MISSING, info.reason_missing)):
            found = [index[f] for f in template_fields(template) if f in index and f != info.name]
            if found:
                out[(j, kind)] = found
    return out


def _ranked(
    features: pd.DataFrame,
    infos: Sequence[FeatureInfo],
    names: Sequence[str],
    risk: np.ndarray,
    choice: np.ndarray,
    top_k: int,
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return concepts, strengths, speakers, each row's top ``top_k`` concepts and the choices.

    Each value is stated once: a given sentence that quotes another feature ("No order for 251
    days; usually orders every 64 days") has said that feature's value, so that feature no
    longer speaks for its own concept for the customer ("Orders on average every 64 days"
    would repeat it); the concept's next feature does, or a weaker concept takes the place.
    Silencing only ever removes speakers, so the loop ends (in practice after one round).
    """
    quotes = _quotes(infos, names)
    concepts, voice, joined = _voices(infos, features)
    while True:
        weight, speaker = _concept_speakers(len(concepts), voice, joined, risk, choice)
        order = np.argsort(-weight, axis=1, kind="stable")[:, :top_k]
        told = np.isfinite(np.take_along_axis(weight, order, axis=1))
        speakers = np.where(told, np.take_along_axis(speaker, order, axis=1), -1)
        silence = np.zeros(choice.shape, dtype=bool)
        for (j, kind), quoted in quotes.items():
            says = (speakers == j).any(axis=1) & (choice[:, j] == kind)
            silence[np.ix_(says, quoted)] = True
        silence &= choice > SILENT
        if not silence.any():
            return concepts, weight, speaker, order, choice
        choice = np.where(silence, SILENT, choice).astype(np.int8)


def _concept_speakers(
    n_concepts: int, voice: np.ndarray, joined: np.ndarray, risk: np.ndarray, choice: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return each (row, concept)'s strength (-inf: nothing to tell) and speaking feature.

    A concept's strength is its strongest speaking member's contribution; its speaker is its
    strongest speaking own feature, or a joined one when none of its own speaks.
    """
    strength = np.where(choice > SILENT, risk, -np.inf)
    n = len(risk)
    weight = np.full((n, n_concepts), -np.inf)
    speaker = np.full((n, n_concepts), -1, dtype=np.int64)
    for g in range(n_concepts):
        member = np.where(voice == g, strength, -np.inf)
        if not np.isfinite(member).any():
            continue
        weight[:, g] = member.max(axis=1)
        own = np.where(joined, -np.inf, member)
        has_own = np.isfinite(own.max(axis=1))
        speaker[:, g] = np.where(has_own, own.argmax(axis=1), member.argmax(axis=1))
    return weight, speaker


def strongest_lever(
    features: pd.DataFrame,
    contributions: pd.DataFrame,
    dictionary: FeatureDictionary,
    levers: Sequence[str],
    direction: float = 1.0,
    references: Mapping[str, Comparison] | None = None,
) -> pd.DataFrame:
    """Each customer's strongest actionable reason: the lever concept raising risk most.

    The reason rule of :func:`reason_codes` over the features of the ``levers`` concepts
    only (what the business can change: satisfaction, service, delivery, ...), so a lever
    speaks only where it raises this customer's risk and its sentence applies. Returns
    ``action_concept`` and ``action_reason`` (``<NA>`` where no lever does) on the index of
    ``features``.
    """
    wanted = set(levers)
    names = [
        c
        for c in contributions.columns
        if c not in NOT_FEATURES and dictionary.info(c).concept in wanted
    ]
    told = reason_codes(
        features,
        contributions[names],
        dictionary,
        top_k=1,
        direction=direction,
        references=references,
        with_features=True,
    )
    # A lever feature that joins a signal's concept where it is zero tells that signal.
    speaks = told["reason_concept_1"].isin(wanted).fillna(False).astype(bool)
    return pd.DataFrame(
        {
            "action_concept": told["reason_concept_1"].where(speaks),
            "action_reason": told["reason_1"].where(speaks),
        },
        index=features.index,
    )
