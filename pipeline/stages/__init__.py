"""The five stages, in order: load → standardise → link → classify → publish.

Each module has one entry function, returns a small report, and names in its docstring the
DuckDB tables it reads and writes (named after the stage: ``std_*``, ``link_*``, ``cls_*``).
"""
