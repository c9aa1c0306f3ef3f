"""Exports: API pages → flattened tables → Parquet partitions, one module per table family.

Import from the modules themselves: this package imports nothing, so a worker process that only
processes chunks (``pipelines.export.chunks``) does not load the HTTP client.
"""
