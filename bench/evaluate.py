"""``make eval``: matching and registry accuracy against the generator's ground truth.

Generates worlds (default: 20k people, seeds 1–3, default dirt), runs the
refresh on each, and prints

* per source and per kind of dirt: rows, share linked to the right person,
  share sent to review, wrong automatic links;
* registry precision / recall / F1, status accuracy and group accuracy.

Usage: python -m bench.evaluate [--people N] [--seeds 1,2,3] [--heavy]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

MATCHED = ["linked", "new_person"]


@dataclass
class Scores:
    link_table: pl.DataFrame
    dirt_table: pl.DataFrame
    registry: dict


def score_links(out_dir: Path, truth_dir: Path) -> pl.DataFrame:
    """links.parquet joined with the truth, one row per extract row, with verdict columns."""
    links = pl.read_parquet(out_dir / "links.parquet")
    persons = pl.read_parquet(out_dir / "persons.parquet").select(
        "person_key", pl.col("id_number").alias("linked_id")
    )
    truth = pl.read_parquet(truth_dir / "rows.parquet")
    df = truth.join(links, on=["source", "file", "row"], how="left").join(
        persons, on="person_key", how="left"
    )
    matched = pl.col("outcome").is_in(MATCHED)
    return df.with_columns(
        missing=pl.col("outcome").is_null(),
        correct=pl.when(pl.col("expected") == "person")
        .then(matched & (pl.col("linked_id") == pl.col("person_id")))
        .when(pl.col("expected") == "unmatched")
        .then(pl.col("outcome") == "unmatched")
        .when(pl.col("expected") == "duplicate")
        .then(pl.col("outcome") == "duplicate")
        .otherwise(pl.col("outcome") == "quarantined")
        .fill_null(False),
        review=(pl.col("outcome") == "review").fill_null(False),
        wrong_link=(
            matched & ((pl.col("expected") != "person") | (pl.col("linked_id") != pl.col("person_id")))
        ).fill_null(False),
        dirty=pl.col("dirt").fill_null("") != "",
    )


def _summary(df: pl.DataFrame, by: str) -> pl.DataFrame:
    return (
        df.group_by(by)
        .agg(
            rows=pl.len(),
            right=pl.col("correct").mean(),
            review=pl.col("review").mean(),
            wrong_links=pl.col("wrong_link").sum(),
            missing=pl.col("missing").sum(),
        )
        .sort(by)
    )


def score_registry(out_dir: Path, truth_dir: Path) -> dict:
    from kuomian.core.policy import policy

    got = pl.read_parquet(out_dir / "persons.parquet").select(
        pl.col("id_number").alias("id_number"),
        "status",
        pl.col("group").cast(pl.Int64).alias("group_got"),
        pl.col("status").is_in(list(policy().statuses.registry)).alias("reg_got"),
        pl.col("status").alias("status_got"),
    )
    truth = pl.read_parquet(truth_dir / "persons.parquet").filter(pl.col("in_population"))
    j = truth.join(got.drop("status"), on="id_number", how="full", coalesce=True)
    reg_t = j["registry"].fill_null(False)
    reg_g = j["reg_got"].fill_null(False)
    tp = int((reg_t & reg_g).sum())
    fp = int((~reg_t & reg_g).sum())
    fn = int((reg_t & ~reg_g).sum())
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    in_truth = j.filter(pl.col("status").is_not_null())
    status_acc = float((in_truth["status"] == in_truth["status_got"]).fill_null(False).mean())
    reg_truth = j.filter(pl.col("registry").fill_null(False))
    group_acc = float((reg_truth["group"].cast(pl.Int64) == reg_truth["group_got"]).fill_null(False).mean())
    extra = int(j.filter(pl.col("status").is_null()).height)
    return {
        "registry_truth": int(reg_t.sum()), "registry_got": int(reg_g.sum()), "tp": tp, "fp": fp, "fn": fn,
        "precision": precision, "recall": recall, "f1": f1, "status_accuracy": status_acc,
        "group_accuracy": group_acc, "persons_not_in_truth_population": extra,
    }  # fmt: skip


def evaluate_world(people: int, seed: int, heavy: bool, workdir: Path, as_of: date) -> Scores:
    from kuomian.commands.run import refresh
    from kuomian.synth import DirtConfig, generate

    world = workdir / f"world_{people}_{seed}{'_heavy' if heavy else ''}"
    generate(world, people=people, seed=seed, as_of=as_of, dirt=DirtConfig.heavy() if heavy else DirtConfig())
    refresh(world / "sources", world / "out", as_of=as_of, force=True)
    rows = score_links(world / "out", world / "truth")
    by_dirt = (
        rows.with_columns(kind=pl.col("dirt").fill_null("").str.split(","))
        .explode("kind")
        .with_columns(kind=pl.when(pl.col("kind") == "").then(pl.lit("(clean)")).otherwise(pl.col("kind")))
    )
    return Scores(
        _summary(rows, "source"), _summary(by_dirt, "kind"), score_registry(world / "out", world / "truth")
    )


def _print_table(title: str, df: pl.DataFrame) -> None:
    print(f"\n{title}")
    print(f"{'':24s}{'rows':>9s}{'right':>10s}{'review':>9s}{'wrong':>7s}{'lost':>6s}")
    for rec in df.iter_rows(named=True):
        key = next(iter(rec.values()))
        print(f"{key!s:24s}{rec['rows']:>9d}{rec['right'] * 100:>9.2f}%{rec['review'] * 100:>8.2f}%"
              f"{rec['wrong_links']:>7d}{rec['missing']:>6d}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--people", type=int, default=20000)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--heavy", action="store_true", help="every kind of dirt at several percent")
    ap.add_argument("--as-of", default="2026-03-01")
    args = ap.parse_args(argv)
    as_of = date.fromisoformat(args.as_of)
    with tempfile.TemporaryDirectory(prefix="kuomian-eval-") as tmp:
        os.environ.setdefault("KUOMIAN_STATE", str(Path(tmp) / "state"))
        all_rows, all_dirt, regs = [], [], []
        for seed in [int(s) for s in args.seeds.split(",")]:
            print(
                f"world: {args.people} people, seed {seed}{', heavy dirt' if args.heavy else ''} …",
                file=sys.stderr,
            )
            s = evaluate_world(args.people, seed, args.heavy, Path(tmp), as_of)
            all_rows.append(s.link_table)
            all_dirt.append(s.dirt_table)
            regs.append(s.registry)

    def combine(tables, key):
        t = pl.concat(tables)
        return (
            t.with_columns(
                right_n=pl.col("right") * pl.col("rows"), review_n=pl.col("review") * pl.col("rows")
            )
            .group_by(key)
            .agg(
                pl.col("rows").sum(),
                pl.col("right_n").sum(),
                pl.col("review_n").sum(),
                pl.col("wrong_links").sum(),
                pl.col("missing").sum(),
            )  # fmt: skip
            .with_columns(
                right=pl.col("right_n") / pl.col("rows"), review=pl.col("review_n") / pl.col("rows")
            )
            .sort(key)
        )

    src = combine(all_rows, "source")
    dirt = combine(all_dirt, "kind")
    _print_table("LINKS BY SOURCE (right = the row got the right person / outcome)", src)
    _print_table("LINKS BY KIND OF DIRT (a row with several kinds counts under each)", dirt)
    total = src["rows"].sum()
    right = float((src["right"] * src["rows"]).sum() / total)
    review = float((src["review"] * src["rows"]).sum() / total)
    wrong = int(src["wrong_links"].sum())
    print(f"\nALL ROWS: {total}  right {right * 100:.3f}% (target >= 99.7%)  review {review * 100:.3f}% (<= 0.5%)  "
          f"wrong auto-links {wrong} = {wrong / total * 100:.4f}% (<= 0.02%)  lost {int(src['missing'].sum())}")  # fmt: skip
    print("\nREGISTRY (per world)")
    for seed, r in zip(args.seeds.split(","), regs, strict=True):
        print(f"  seed {seed}: registry truth {r['registry_truth']} got {r['registry_got']}  "
              f"precision {r['precision']:.4f} recall {r['recall']:.4f} F1 {r['f1']:.4f}  "
              f"status accuracy {r['status_accuracy']:.4f} group accuracy {r['group_accuracy']:.4f}  "
              f"persons outside truth population {r['persons_not_in_truth_population']}")  # fmt: skip
    f1 = min(r["f1"] for r in regs)
    print(
        f"  worst F1 {f1:.4f}, status {min(r['status_accuracy'] for r in regs):.4f}, "
        f"group {min(r['group_accuracy'] for r in regs):.4f} (targets >= 0.998)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
