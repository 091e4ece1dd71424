"""The commands behind the CLI: refresh/validate (run), check, compare, survey and review imports."""
