"""The stakeholder report: self-contained HTML pages built from the pipeline's outputs."""
