"""The retailer simulation behind ``loyalty generate`` (see docs/simulation.md)."""
