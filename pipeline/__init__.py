"""loyalty-pipeline: point-in-time churn and repurchase models for retail customers."""

__version__ = "0.1.0"
