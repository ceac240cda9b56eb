"""Helpers for the demand-analytics notebooks: warehouse, ingestion, data quality, pipeline."""

__version__ = "0.1.0"
