"""Source adapters: a raw export (or the embedded simulation) -> canonical raw tables."""
