"""One Splink 5 linkage run (DuckDB backend), for ``python -m bench.speed --splink``.

Standalone on purpose (needs only splink, duckdb and pyarrow), so that it runs in the
project's venv or in a separate one (``output/bench/splink-venv``) if Splink ever
conflicts with the tool's own pins. Reads the standardised rows kuomian's linker reads,
links every non-household row to the household persons, keeps per row the best candidate
at or above the threshold, and writes ``row_id, person_id, match_probability`` to Parquet.

Prints nothing useful; writes a JSON result (phase seconds and peak RSS per phase).

    python bench/splink_run.py --std std_rows.parquet --out links.parquet --result r.json \
        [--threads N] [--memory-limit 4GB] [--tmp DIR] [--threshold 0.9] [--u-max-pairs 1e7]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from probes import Phases  # noqa: E402
from splink_settings import (  # noqa: E402
    BASE_WHERE,
    EM_BLOCKING_RULES,
    INPUT_SQL,
    ROWS_WHERE,
    settings,
)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--std", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--result", required=True)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--memory-limit")
    ap.add_argument("--tmp")
    ap.add_argument("--threshold", type=float, default=0.9)
    ap.add_argument("--u-max-pairs", type=float, default=1e7)
    ap.add_argument("--em-max-pairs", type=float, default=2e6)
    a = ap.parse_args(argv)

    t_start = time.perf_counter()
    import duckdb
    import splink
    from splink import DuckDBAPI, Linker

    logging.basicConfig(level=logging.WARNING)
    ph = Phases()
    con = duckdb.connect(":memory:")
    if a.tmp:
        Path(a.tmp).mkdir(parents=True, exist_ok=True, mode=0o700)
        con.execute(f"SET temp_directory = '{Path(a.tmp).as_posix()}'")
    if a.threads:
        con.execute(f"SET threads = {int(a.threads)}")
    if a.memory_limit:
        con.execute(f"SET memory_limit = '{a.memory_limit}'")
    std = Path(a.std).resolve().as_posix().replace("'", "''")

    def prepare():
        con.execute("CREATE TABLE sp_base AS " + INPUT_SQL.format(std=std, where=BASE_WHERE))
        con.execute("CREATE TABLE sp_rows AS " + INPUT_SQL.format(std=std, where=ROWS_WHERE))
        return con.execute(
            "SELECT (SELECT count(*) FROM sp_base), (SELECT count(*) FROM sp_rows)"
        ).fetchall()[0]

    n_base, n_rows = ph.run("prepare", prepare)

    db_api = DuckDBAPI(connection=con)
    base = db_api.register("sp_base", dataset_display_name="base")
    rows = db_api.register("sp_rows", dataset_display_name="rows")
    # Nearly every row has its person in the base: one match per row among n_base candidates.
    linker = Linker([base, rows], settings(1.0 / max(n_base, 1)), log_level=logging.WARNING)

    def train():
        linker.training.estimate_u_using_random_sampling(max_pairs=a.u_max_pairs, seed=1)
        for rule in EM_BLOCKING_RULES:
            linker.training.estimate_parameters_using_expectation_maximisation(
                rule, estimate_without_term_frequencies=True, max_pairs=a.em_max_pairs
            )

    ph.run("train", train)
    pred = ph.run(
        "predict",
        lambda: linker.inference.predict(threshold_match_probability=a.threshold, warning_mode="never"),
    )
    out = Path(a.out).resolve().as_posix().replace("'", "''")

    def best():
        # One decision per row: its best candidate (ties broken by the smaller person id).
        con.execute(
            f"""
            COPY (
                WITH p AS (
                    SELECT CASE WHEN source_dataset_l = 'base' THEN unique_id_r ELSE unique_id_l END AS row_id,
                           CASE WHEN source_dataset_l = 'base' THEN unique_id_l ELSE unique_id_r END AS base_id,
                           match_probability
                    FROM {pred.physical_name}
                )
                SELECT p.row_id, b.id AS person_id, p.match_probability
                FROM p JOIN sp_base b ON b.unique_id = p.base_id
                QUALIFY row_number() OVER (PARTITION BY p.row_id ORDER BY p.match_probability DESC, b.id) = 1
            ) TO '{out}' (FORMAT parquet)
            """
        )
        return con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchall()[0][0]

    n_links = ph.run("best_link", best)
    n_pairs = con.execute(f"SELECT count(*) FROM {pred.physical_name}").fetchall()[0][0]
    result = {
        "splink_version": splink.__version__,
        "duckdb_version": duckdb.__version__,
        "base_persons": n_base,
        "rows": n_rows,
        "pairs_above_threshold": n_pairs,
        "links": n_links,
        "threshold": a.threshold,
        "seconds": ph.seconds,
        "peak_mib": ph.peak_mib,
        "startup_peak_mib": round(ph.start_peak, 1),
        "wall": round(time.perf_counter() - t_start, 3),
    }
    Path(a.result).write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
