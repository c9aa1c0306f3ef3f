"""Dagster asset families, one module per family: thin calls into the ``pipelines`` library."""
