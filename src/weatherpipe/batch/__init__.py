"""The batch job: read finished raw files, validate and aggregate them with an engine, and merge
the partial sums into PostgreSQL exactly once."""
