"""Review decisions, kept per registry in OUT_DIR's state folder.

``OUT_DIR/state/review_decisions.parquet`` holds the 是/否 a reviewer gave, keyed by a keyed
fingerprint of the extract row and the candidate's ``person_key`` (with a keyed fingerprint of
the candidate's name, so that a 是 is applied only while the name is the one the reviewer saw);
``state/review_offers.parquet`` the pairs the registry's review.xlsx offered. Written by
``kuomian review import`` (commands/review.py) and by publish; read by the link stage.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from .i18n import _

STATE = "state"
DECISION_SCHEMA = {
    "fingerprint": pl.String, "person_key": pl.String, "name_fp": pl.String, "decision": pl.String,
    "decided_on": pl.Date,
}  # fmt: skip


def decisions_path(registry: Path) -> Path:
    """A registry's review decisions (its state folder)."""
    return Path(registry) / STATE / "review_decisions.parquet"


def offers_path(registry: Path) -> Path:
    """The (row, candidate) pairs a registry's review.xlsx offered."""
    return Path(registry) / STATE / "review_offers.parquet"


def read_decisions(path: Path) -> pl.DataFrame:
    if not path.exists():
        return pl.DataFrame(schema=DECISION_SCHEMA)
    d = pl.read_parquet(path)
    if "name_fp" not in d.columns:  # decisions of an older version: no name to check, never applied
        return pl.DataFrame(schema=DECISION_SCHEMA)
    return d.select([pl.col(c).cast(t) for c, t in DECISION_SCHEMA.items()])


def stored_decisions(*registries: Path | None, progress=lambda m: None) -> pl.DataFrame:
    """The decisions of these registries (a later one wins for the same pair): what a refresh
    carries from ``--previous`` and from the OUT_DIR it replaces."""
    from ..core.privacy import state_dir

    legacy = state_dir() / "review_decisions.parquet"
    if legacy.exists():
        progress(
            _(
                "note: {legacy} holds review decisions of an older version that are no longer used (decisions are kept per registry now): import the filled-in review.xlsx into its OUT_DIR again"
            ).format(legacy=legacy)
        )
    out = pl.DataFrame(schema=DECISION_SCHEMA)
    for reg in registries:
        if reg is None:
            continue
        d = read_decisions(decisions_path(reg))
        out = pl.concat([out.join(d, on=["fingerprint", "person_key"], how="anti"), d], how="vertical")
    return out


def decisions_for_link(key: bytes, person_ids: list[str], decisions: pl.DataFrame) -> pl.DataFrame:
    """Stored decisions with person_key mapped back to the canonical ID of this run's persons."""
    from ..core.privacy import person_keys

    m = pl.DataFrame({"person_id": person_ids, "person_key": person_keys(person_ids, key)})
    return decisions.join(m, on="person_key", how="inner").select(
        "fingerprint", "person_id", "name_fp", "decision"
    )
