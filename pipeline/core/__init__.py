"""Helpers every stage and command shares: configuration, DuckDB, errors, IDs, names, dates, keys."""
