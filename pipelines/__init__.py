"""langsmith-export: LangSmith sessions, runs and experiments to Hive-partitioned Parquet."""
