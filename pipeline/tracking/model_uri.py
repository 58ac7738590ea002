"""How registered models are named and addressed: ``loyalty-<target>``, aliases, model URIs.

MLflow-free at import. Every part of a model URI is checked by :mod:`pipeline.names` before it
is used: it becomes a download folder (``pipeline.engines.work.resolve_model``).
"""

from __future__ import annotations

from pipeline import names
from pipeline.errors import ModelError

CHAMPION = "champion"
CHALLENGER = "challenger"


def registered_model_name(target: str) -> str:
    """Registry name of a target's model: ``loyalty-churn``, ``loyalty-repurchase``."""
    return f"loyalty-{target}"


def parse_model_uri(uri: str) -> tuple[str, str | None, str | None]:
    """Split ``models:/name@alias`` or ``models:/name/version`` into its checked parts.

    A part that is not a registry name (``..``, empty, a path, a NUL) is a :class:`ModelError`.
    """
    body = uri.removeprefix("models:/")
    if "@" in body:
        name, alias = body.split("@", 1)
        return _part(name, "name", uri), _part(alias, "alias", uri), None
    name, slash, version = body.partition("/")
    return _part(name, "name", uri), None, _part(version, "version", uri) if slash else None


def _part(value: str, what: str, uri: str) -> str:
    return names.checked(
        value, f"--model {uri[:80]!r}: registry {what}", names.REGISTRY_NAME, ModelError
    )
