"""Point-in-time customer features and labels (see docs/features.md).

Entry points: :func:`pipeline.features.snapshot.build_snapshot` (one cutoff),
:func:`pipeline.features.panel.build_panel` (the training panel) and
:func:`pipeline.features.panel.build_scoring_snapshot` (the scorer's snapshot at an as-of date).
"""
