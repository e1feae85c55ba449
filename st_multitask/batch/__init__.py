"""Batch embedding and prediction: one Arrow-table predictor, run locally, on Ray Data or on Spark."""
