"""Building blocks of the clean stage: reject reasons, value parsers, per-table cleaners."""
