"""Model training, calibration, baselines, metrics and the artefact loader."""
