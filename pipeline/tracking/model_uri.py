"""How registered models are named and addressed: ``loyalty-<target>``, aliases, model URIs.

MLflow-free at import.
"""

from __future__ import annotations

CHAMPION = "champion"
CHALLENGER = "challenger"


def registered_model_name(target: str) -> str:
    """Registry name of a target's model: ``loyalty-churn``, ``loyalty-repurchase``."""
    return f"loyalty-{target}"


def parse_model_uri(uri: str) -> tuple[str, str | None, str | None]:
    """Split ``models:/name@alias`` or ``models:/name/version`` into its parts."""
    body = uri.removeprefix("models:/")
    if "@" in body:
        name, alias = body.split("@", 1)
        return name, alias, None
    name, _, version = body.partition("/")
    return name, None, version or None
