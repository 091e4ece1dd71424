"""The policy as checked data (core/policy.py): the bureau's own folder (``rules export``, ``--rules``,
``KUOMIAN_RULES``), errors that name the file and the key before any data is read, and every
documented knob of rules/README.md changed in a copy of the rules and seen end to end on the
tiny sources of conftest.py."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from kuomian.cli import app
from kuomian.core.config import defaults_home
from kuomian.core.policy import PolicyError, export_defaults, load_policy
from tests.conftest import LI, WANG, ZHANG, make_id, write_tiny_sources

runner = CliRunner()
ZHAO = make_id("53018119700101005")  # 赵六, unenrolled (added by some tests)
AS_OF = "2026-03-01"


def edit(path: Path, old: str, new: str) -> None:
    """Replace one exact piece of a policy file (failing if the defaults no longer hold it)."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{path.name} no longer holds {old!r}: update the test"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def exported(tmp_path: Path) -> Path:
    pol = tmp_path / "policy"
    export_defaults(pol)
    return pol


def refresh(tmp_path: Path, pol: Path | None, extra: Callable[[Path], None] | None = None, name: str = "out"):
    """One refresh of the tiny sources (plus ``extra`` files) with the policy folder ``pol``."""
    src = write_tiny_sources(tmp_path / f"src_{name}")
    if extra:
        extra(src)
    out = tmp_path / name
    args = ["-q", "refresh", str(src), "--out", str(out), "--as-of", AS_OF]
    res = runner.invoke(app, args + (["--rules", str(pol)] if pol else []))
    assert res.exit_code == 0, res.stderr
    return out


def persons(out: Path) -> dict[str, dict]:
    return {r["id_number"]: r for r in pl.read_parquet(out / "persons.parquet").iter_rows(named=True)}


def handoff_rows(out: Path) -> list[dict]:
    rows = []
    for f in sorted((out / "handoff").glob("*.csv")):
        with open(f, encoding="utf-8-sig", newline="") as fh:
            rows += list(csv.DictReader(fh))
    return rows


def read_csv(path: Path) -> list[dict]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


# ---------------------------------------------------------------- the policy folder


def test_rules_export_writes_the_defaults_and_check_finds_no_difference(tmp_path):
    res = runner.invoke(app, ["rules", "export", str(tmp_path / "p")])
    assert res.exit_code == 0, res.stderr
    for folder in ("rules", "sources"):
        want = sorted(p.name for p in (defaults_home() / folder).iterdir() if p.is_file())
        assert sorted(p.name for p in (tmp_path / "p" / folder).iterdir()) == want
    res = runner.invoke(app, ["rules", "check", "--rules", str(tmp_path / "p")])
    assert res.exit_code == 0, res.stderr
    assert "same as the installed defaults" in res.stdout
    again = runner.invoke(app, ["rules", "export", str(tmp_path / "p")])
    assert again.exit_code == 1 and "--force" in again.stderr


def test_typo_in_statuses_fails_before_any_data_is_read(tmp_path):
    """The issue's example: `{ages: …}` → exit 1 naming the file and the key, not exit 70 in classify.
    The sources folder does not even exist: the policy is checked first."""
    pol = exported(tmp_path)
    edit(pol / "rules" / "statuses.yaml", 'when: {age: {"<": 16}}', 'when: {ages: {"<": 16}}')
    for cmd in (
        ["refresh", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")],
        ["validate", "nowhere"],
    ):
        res = runner.invoke(app, [*cmd, "--rules", str(pol)])
        assert res.exit_code == 1, res.stderr
        line = res.stderr.strip()
        assert "\n" not in line and "statuses.yaml" in line
        assert "excluded.reasons[2].when" in line and "'ages'" in line and "allowed: source" in line
    assert not (tmp_path / "out").exists()


def test_environment_variable_names_the_policy_folder(tmp_path, monkeypatch):
    pol = exported(tmp_path)
    edit(pol / "rules" / "statuses.yaml", "label: 未参保", "label: 未参保人员")
    monkeypatch.setenv("KUOMIAN_RULES", str(pol))
    out = refresh(tmp_path, None)
    assert {r["参保状态"] for r in handoff_rows(out)} == {"未参保人员"}
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert manifest["policy"]["folder"] == str(pol.resolve())


def test_manifest_and_report_say_which_policy_and_what_differs(tmp_path):
    pol = exported(tmp_path)
    edit(pol / "rules" / "groups.yaml", "min_withheld_months: 6", "min_withheld_months: 3")
    out = refresh(tmp_path, pol)
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert manifest["policy"] == {
        "folder": str(pol.resolve()),
        "default": False,
        "differs_from_defaults": ["rules/groups.yaml"],
        "differences": {"rules/groups.yaml": ["employers.min_withheld_months"]},
    }
    for rel, digest in manifest["rules"].items():
        assert hashlib.sha256((pol / rel).read_bytes()).hexdigest() == digest
    assert set(manifest["rules"]) == {
        f"{d}/{p.name}" for d in ("rules", "sources") for p in (pol / d).iterdir()
    }
    page = (out / "report.html").read_text("utf-8")
    assert str(pol.resolve()) in page and "rules/groups.yaml: employers.min_withheld_months" in page
    default_out = refresh(tmp_path, None, name="default")
    m2 = json.loads((default_out / "manifest.json").read_text("utf-8"))
    assert m2["policy"]["default"] is True and m2["policy"]["differs_from_defaults"] == []
    assert m2["policy"]["differences"] == {}
    assert "安装的默认规则" in (default_out / "report.html").read_text("utf-8")


# ---------------------------------------------------------------- one line per mistake

MISTAKES = [
    ("rules/statuses.yaml", "registry_statuses: [unenrolled, resident_upgradable]",
     "registry_statuses: [unenrolled, upgradable]", "registry_statuses[1]", "unknown status 'upgradable'"),
    ("rules/statuses.yaml", "registry_statuses:", "registry_status:", "top level", "unknown key 'registry_status'"),
    ("rules/statuses.yaml", "{groups_any: [1, 3, 4, 5, 6]}", "{groups_any: [1, 3, 9]}", "groups_any[2]",
     "unknown group 9"),
    ("rules/groups.yaml", "{source: lowincome}", "{source: low_income}", "groups[0].when.any[0].source",
     "unknown source 'low_income'"),
    ("rules/groups.yaml", "withheld_months: {\">=\": 6}", "withheld_month: {\">=\": 6}", "where",
     "unknown key 'withheld_month'"),
    ("rules/groups.yaml", "category: {in: [律师, 导游]}", "category: {in: [律师, 导游员]}", "groups[4].when",
     "'导游员' is not a value of vocabulary roster_category"),
    ("rules/groups.yaml", "annual_income: {\">=\": 60000}", "annual_income: {\">=\": 六万}", "annual_income",
     "expected a number"),
    ("rules/groups.yaml", "upgradable_groups: [1, 3, 4, 5, 6]", "upgradable_groups: [1, 3, 12]",
     "upgradable_groups", "unknown group 12"),
    ("rules/indicators.yaml", "employee_statuses: [enrolled_employee]", "employee_statuses: [employee]",
     "employee_statuses[0]", "unknown status 'employee'"),
    ("rules/indicators.yaml", '"2025": 0.95', '"2025": 95', "targets.coverage.2025", "out of range"),
    ("rules/matching.yaml", "candidates: one_edit", "candidates: one_typo", "rules[9].candidates",
     "unknown candidate method 'one_typo'"),
    ("rules/survey.yaml", "{field: willingness,", "{field: willing,", "columns[2].field",
     "unknown survey field 'willing'"),
    ("rules/retirement.yaml", "女: women_55", "女: women_56", "track_by_sex.女", "unknown track 'women_56'"),
    ("rules/retirement.yaml", "cap_age: 63", "cap_age: 63.5", "tracks.men_60.cap_age", "expected a whole number"),
    ("rules/tasks.yaml", "enrolled_statuses: [参保缴费, 待遇领取]", "enrolled_statuses: [参保缴费, 领取待遇中]",
     "enrolled_statuses[1]", "unknown enroll_status value '领取待遇中'"),
    ("rules/tasks.yaml", "tasks: {}", "tasks: {'2026': {'530181099000': {enrolment: 5}}}", "tasks.2026.530181099000",
     "not a street code"),
    ("rules/files.yaml", "max_columns: 1000", "max_columns: many", "limits.max_columns", "expected a number"),
    ("rules/files.yaml", "max_sheets: 500", "max_sheets: 0", "limits.max_sheets", "out of range"),
    ("rules/files.yaml", "max_line_mb: 4", "max_line_mb: -4", "limits.max_line_mb", "out of range"),
    ("rules/files.yaml", "file_share: 0.20", "file_share: 20", "damage.file_share", "out of range"),
    ("rules/files.yaml", "search_rows: 10", "search_row: 10", "header", "unknown key 'search_row'"),
    ("rules/files.yaml", "fill_drop: 0.4", "fill_drop: .nan", "guards.fill_drop", "not a finite number"),
    ("rules/files.yaml", "rows_fall: 0.3", "rows_fall: 1.3", "guards.previous.rows_fall", "out of range"),
    ("rules/files.yaml", "rows_growth: 1.5", "rows_growth: .inf", "guards.previous.rows_growth",
     "not a finite number"),
    ("rules/files.yaml", "{annual_income: 0.95}", "{annual_incom: 0.95}", "guards.expected_fill.income.annual_incom",
     "unknown column of income 'annual_incom'"),
    ("rules/files.yaml", "  roster: {category: 0.95}", "  rosters: {category: 0.95}", "guards.expected_fill.rosters",
     "unknown source 'rosters'"),
    ("rules/files.yaml", "{student_status: 0.95}", "{student_status: 95}", "guards.expected_fill.student.student_status",
     "out of range"),
    ("sources/income.yaml", "type: number", "type: money", "fields.annual_income.type", "unknown type 'money'"),
    ("sources/tax.yaml", "vocabulary: entity_size", "vocabulary: entity_sizes", "fields.entity_size.vocabulary",
     "unknown vocabulary 'entity_sizes'"),
]  # fmt: skip


@pytest.mark.parametrize("file,old,new,where,what", MISTAKES, ids=[m[2][:30] for m in MISTAKES])
def test_a_mistake_names_the_file_the_key_and_what_is_allowed(tmp_path, file, old, new, where, what):
    pol = exported(tmp_path)
    edit(pol / file, old, new)
    with pytest.raises(PolicyError) as e:
        load_policy(pol)
    msg = str(e.value)
    assert str(pol / file) in msg and where in msg and what in msg, msg
    assert "\n" not in msg


def test_rules_check_names_the_keys_that_differ(tmp_path):
    pol = exported(tmp_path)
    _group_label_and_action(pol)
    _wang_unenrolled(pol)
    edit(pol / "rules" / "statuses.yaml", "registry_statuses: [unenrolled, resident_upgradable]",
         "registry_statuses: [unenrolled]")  # fmt: skip
    res = runner.invoke(app, ["rules", "check", "--rules", str(pol)])
    assert res.exit_code == 0, res.stderr
    assert "rules/groups.yaml: groups[group=8].label, groups[group=8].action" in res.stdout
    assert (
        "rules/statuses.yaml: excluded.reasons[reason=under_16].when.age.<, registry_statuses" in res.stdout
    )


def test_a_missing_policy_file_or_folder_is_named(tmp_path):
    pol = exported(tmp_path)
    (pol / "rules" / "retirement.yaml").unlink()
    with pytest.raises(PolicyError, match="retirement.yaml: missing"):
        load_policy(pol)
    res = runner.invoke(app, ["validate", "x", "--rules", str(tmp_path / "none")])
    assert res.exit_code == 1 and "not a policy folder" in res.stderr


# ---------------------------------------------------------------- every documented knob, end to end


def add_income(withheld: int = 5, income: int = 70000) -> Callable[[Path], None]:
    def write(src: Path) -> None:
        (src / "个税.csv").write_text(
            f"身份证号,姓名,街道,年收入,扣缴月数,扣缴义务人\n{ZHANG},张伟,连然街道,{income},{withheld},安宁某公司\n",
            encoding="utf-8",
        )

    return write


def test_registry_statuses_only_unenrolled(tmp_path):
    """`registry_statuses: [unenrolled]`: a resident member with a high income stays resident_upgradable
    but leaves the registry, its hand-off and its partitions; the run is otherwise correct."""

    def resident(src: Path) -> None:
        add_income(withheld=0)(src)
        with open(src / "户籍人口_连然街道.csv", "a", encoding="utf-8") as fh:
            fh.write(f"{ZHAO},赵六,连然街道,金湖社区,男,1970-01-01,农业,安宁市连然街道金湖社区3号,\n")
        (src / "参保信息.csv").write_text(
            f"身份证号,姓名,险种,参保状态\n{LI},李娜,企业职工养老,正常缴费\n{ZHANG},张伟,城乡居民养老,正常缴费\n",
            encoding="utf-8-sig",
        )

    before = persons(refresh(tmp_path, None, resident, name="default"))
    assert before[ZHANG]["status"] == "resident_upgradable" and before[ZHANG]["group"] == 6
    pol = exported(tmp_path)
    edit(pol / "rules" / "statuses.yaml", "registry_statuses: [unenrolled, resident_upgradable]",
         "registry_statuses: [unenrolled]")  # fmt: skip
    out = refresh(tmp_path, pol, resident)
    after = persons(out)
    assert after[ZHANG]["status"] == "resident_upgradable"
    assert (
        after[ZHANG]["group"] is None
        and after[ZHANG]["measure"] is None
        and after[ZHANG]["first_listed"] is None
    )
    assert after[ZHAO]["status"] == "unenrolled" and after[ZHAO]["group"] == 8
    registry = pl.read_parquet(out / "registry" / "**" / "*.parquet", hive_partitioning=True)
    assert registry["id_number"].to_list() == [ZHAO] and registry["status"].to_list() == ["unenrolled"]
    assert [r["姓名"] for r in handoff_rows(out)] == ["赵六"]
    assert read_csv(out / "indicators.csv")[-1]["实名库人数(含非户籍)"] == "1"
    assert before[ZHAO]["group"] == 8 and len([p for p in before.values() if p["group"]]) == 2


def _wang_unenrolled(pol: Path) -> None:
    edit(pol / "rules" / "statuses.yaml", 'when: {age: {"<": 16}}', 'when: {age: {"<": 12}}')


def _check_wang(out: Path) -> None:
    p = persons(out)[WANG]
    assert (p["status"], p["exclusion_reason"], p["group"]) == ("unenrolled", None, 8)


def _status_label(pol: Path) -> None:
    edit(pol / "rules" / "statuses.yaml", "label: 未参保", "label: 未参保人员")


def _check_status_label(out: Path) -> None:
    assert [r["参保状态"] for r in handoff_rows(out)] == ["未参保人员"]


def _group_label_and_action(pol: Path) -> None:
    edit(pol / "rules" / "groups.yaml", "label: 其他应参未参人员", "label: 其他人员")
    edit(pol / "rules" / "groups.yaml", "action: 入户宣传，动员参加城乡居民养老保险", "action: 上门动员参保")


def _check_group_label_and_action(out: Path) -> None:
    (row,) = handoff_rows(out)
    assert (row["重点群体"], row["建议措施"]) == ("第8类 其他人员", "上门动员参保")
    assert persons(out)[ZHANG]["measure"] == "上门动员参保"


def _group_condition(pol: Path) -> None:
    edit(pol / "rules" / "groups.yaml", 'withheld_months: {">=": 6}', 'withheld_months: {">=": 5}')


def _check_group3(out: Path) -> None:
    p = persons(out)[ZHANG]
    assert (p["group"], p["group_tags"]) == (3, [3, 6])


def _group_priority(pol: Path) -> None:
    _group_condition(pol)
    edit(pol / "rules" / "groups.yaml", "group: 3\n    priority: 6", "group: 3\n    priority: 9")


def _check_group6_first(out: Path) -> None:
    p = persons(out)[ZHANG]
    assert (p["group"], p["group_tags"]) == (6, [3, 6])


def _employers(pol: Path) -> None:
    edit(pol / "rules" / "groups.yaml", "min_withheld_months: 6", "min_withheld_months: 5")


def _check_employers(out: Path) -> None:
    assert [r["扣缴义务人(单位)"] for r in read_csv(out / "employers.csv")] == ["安宁某公司"]


def _targets(pol: Path) -> None:
    edit(pol / "rules" / "indicators.yaml", '"2025": 0.95', '"2027": 0.40')


def _check_targets(out: Path) -> None:
    city = read_csv(out / "indicators.csv")[-1]
    assert "距2025年参保率目标缺口(人)" not in city
    assert city["距2027年参保率目标缺口(人)"] == "0"  # 1 enrolled of 2 eligible ≥ 40 %


def _enrolled_statuses(pol: Path) -> None:
    edit(pol / "rules" / "indicators.yaml",
         "enrolled_statuses: [receiving, enrolled_employee, enrolled_resident, resident_upgradable, enrolled_elsewhere]",
         "enrolled_statuses: [receiving, enrolled_resident, resident_upgradable, enrolled_elsewhere]")  # fmt: skip


def _check_enrolled(out: Path) -> None:
    city = read_csv(out / "indicators.csv")[-1]
    assert (city["应参保人数"], city["已参保人数"]) == ("2", "0")


def _vocabulary(pol: Path) -> None:
    edit(pol / "rules" / "vocabularies.yaml", "企业职工养老, 职工养老", "企业职工养老, 职工保险, 职工养老")


def _enrolled_as_职工保险(src: Path) -> None:
    (src / "参保信息.csv").write_text(
        f"身份证号,姓名,险种,参保状态\n{LI},李娜,职工保险,正常缴费\n", encoding="utf-8-sig"
    )


def _check_vocabulary(out: Path) -> None:
    assert persons(out)[LI]["status"] == "enrolled_employee"


def _survey_header(pol: Path) -> None:
    edit(pol / "rules" / "survey.yaml", "header: 缴费能力,", "header: 缴费能力评估,")


def _check_survey_header(out: Path) -> None:
    (row,) = handoff_rows(out)
    assert "缴费能力评估" in row and "缴费能力" not in row


def _street(pol: Path) -> None:
    with open(pol / "rules" / "streets.csv", "a", encoding="utf-8") as fh:
        fh.write("530181010000,新城街道\n")


def _zhang_in_新城(src: Path) -> None:
    f = src / "户籍人口_连然街道.csv"
    f.write_text(f.read_text("utf-8").replace(f"{ZHANG},张伟,连然街道", f"{ZHANG},张伟,新城街道"), "utf-8")


def _check_street(out: Path) -> None:
    p = persons(out)[ZHANG]
    assert (p["street_code"], p["street_name"]) == ("530181010000", "新城街道")
    assert (out / "handoff" / "530181010000_新城街道.csv").exists()


def _match_confidence(pol: Path) -> None:
    edit(pol / "rules" / "matching.yaml", "candidates: id_equal\n    name: agree\n    confidence: 1.0",
         "candidates: id_equal\n    name: agree\n    confidence: 0.9")  # fmt: skip


def _check_confidence(out: Path) -> None:
    links = pl.read_parquet(out / "links.parquet").filter(pl.col("source") == "enrollment")
    assert links["confidence"].to_list() == [0.9] and persons(out)[LI]["match_confidence"] == 0.9


def _match_band(pol: Path) -> None:
    edit(pol / "rules" / "matching.yaml", "candidates: id_equal\n    name: agree\n    confidence: 1.0",
         "candidates: id_equal\n    name: agree\n    confidence: 1.0\n    band: review")  # fmt: skip


def _check_band(out: Path) -> None:
    links = pl.read_parquet(out / "links.parquet").filter(pl.col("source") == "enrollment")
    assert links["outcome"].to_list() == ["review"] and persons(out)[LI]["status"] == "unenrolled"


def _women_50(pol: Path) -> None:
    edit(pol / "rules" / "retirement.yaml", "女: women_55", "女: women_50")


def _check_women_50(out: Path) -> None:
    # born 1985-02: the 50 track reaches its cap of 55 (the 55 track would give 58)
    assert str(persons(out)[LI]["pension_date"]) == "2040-02-12"


def _minimum_years(pol: Path) -> None:
    edit(pol / "rules" / "retirement.yaml", "max_years: 20", "max_years: 30")
    edit(pol / "rules" / "retirement.yaml", "rise_months_per_year: 6", "rise_months_per_year: 12")


def _check_minimum_years(out: Path) -> None:
    # 张伟: pension_date 2053-01-07, 26.9 years away; the minimum in 2053 is now 30 years
    assert persons(out)[ZHANG]["measure"].endswith("(距法定退休不足最低缴费年限,可延长缴费)")


def _source_alias(pol: Path) -> None:
    edit(pol / "sources" / "household.yaml", "aliases: [户口性质]", "aliases: [户口性质, 户口类别]")


def _header_户口类别(src: Path) -> None:
    f = src / "户籍人口_连然街道.csv"
    f.write_text(f.read_text("utf-8").replace(",户口性质,", ",户口类别,"), "utf-8")


def _check_alias(out: Path) -> None:
    assert persons(out)[ZHANG]["hukou_type"] == "农业"


KNOBS = [
    ("statuses: an exclusion reason's condition", _wang_unenrolled, None, _check_wang),
    ("statuses: a status label", _status_label, None, _check_status_label),
    ("groups: label and suggested measure", _group_label_and_action, None, _check_group_label_and_action),
    ("groups: condition", _group_condition, add_income(), _check_group3),
    ("groups: priority", _group_priority, add_income(), _check_group6_first),
    ("groups: employer list threshold", _employers, add_income(), _check_employers),
    ("indicators: targets", _targets, None, _check_targets),
    ("indicators: enrolled statuses", _enrolled_statuses, None, _check_enrolled),
    ("vocabularies: a spelling", _vocabulary, _enrolled_as_职工保险, _check_vocabulary),
    ("survey: a column header", _survey_header, None, _check_survey_header),
    ("streets.csv: a street", _street, _zhang_in_新城, _check_street),
    ("matching: confidence", _match_confidence, None, _check_confidence),
    ("matching: review band", _match_band, None, _check_band),
    ("retirement: a woman's track", _women_50, None, _check_women_50),
    ("retirement: minimum contribution schedule", _minimum_years, None, _check_minimum_years),
    ("sources: a header alias", _source_alias, _header_户口类别, _check_alias),
]


@pytest.mark.parametrize("change,extra,check", [k[1:] for k in KNOBS], ids=[k[0] for k in KNOBS])
def test_documented_knob_changes_the_outputs(tmp_path, change, extra, check):
    """The knob changed in a copy of the rules changes the outputs; the defaults do not show the change."""
    default_out = refresh(tmp_path, None, extra, name="default")
    with pytest.raises(AssertionError):
        check(default_out)
    pol = exported(tmp_path)
    change(pol)
    check(refresh(tmp_path, pol, extra))


def test_employer_header_says_the_threshold_in_force(tmp_path):
    pol = exported(tmp_path)
    _employers(pol)
    out = refresh(tmp_path, pol, add_income())
    assert read_csv(out / "employers.csv")[0]["实名库中扣缴满5个月人数"] == "1"


def test_a_policy_folder_from_before_files_yaml_reads_files_with_the_defaults(tmp_path):
    from kuomian.core.config import use_policy
    from kuomian.core.policy import policy

    pol = exported(tmp_path)
    (pol / "rules" / "files.yaml").unlink()
    load_policy(pol)  # still a valid policy folder
    use_policy(pol)
    try:
        assert policy().file_rules.limits["max_columns"] == 1000
        edit_target = pol / "rules" / "files.yaml"
        export_defaults(tmp_path / "fresh")
        edit_target.write_bytes((tmp_path / "fresh" / "rules" / "files.yaml").read_bytes())
        edit(edit_target, "max_columns: 1000", "max_columns: 50")
        use_policy(pol)  # the bureau's own limit is the one in force
        assert policy().file_rules.limits["max_columns"] == 50
    finally:
        use_policy(None)


def test_a_files_yaml_from_before_the_guards_uses_the_default_guards(tmp_path):
    import re

    from kuomian.commands.guards import guard_rules
    from kuomian.core.config import use_policy
    from kuomian.core.policy import policy

    pol = exported(tmp_path)
    f = pol / "rules" / "files.yaml"
    f.write_text(re.sub(r"\n# Guards against.*", "\n", f.read_text("utf-8"), flags=re.S), "utf-8")
    load_policy(pol)  # still a valid policy folder
    use_policy(pol)
    try:
        assert not policy().file_rules.own_guards
        assert guard_rules().min_rows == 50 and guard_rules().expected_fill["household"]["community"] == 0.95
    finally:
        use_policy(None)


def test_the_policy_in_force_is_read_once_and_forgotten_with_the_caches(tmp_path):
    """Every module reads policy() per file, not per row: it is checked once per folder and kept
    until the caches are cleared (--rules, or a file edited in a long-lived process)."""
    from kuomian.core import config
    from kuomian.core.policy import load as policy_load
    from kuomian.core.policy import policy

    config.clear_caches()
    first = policy()
    misses = policy_load._load.cache_info().misses
    assert all(policy() is first for _ in range(1000))
    assert policy_load._load.cache_info().misses == misses  # no file read again
    pol = exported(tmp_path)
    edit(pol / "rules" / "tasks.yaml", "tasks: {}", 'tasks:\n  "2026":\n    "530181001000": {enrolment: 7}')
    config.use_policy(pol)
    try:
        assert policy() is not first and policy().tasks.by_year == {
            "2026": {"530181001000": {"enrolment": 7, "employee": None}}
        }
        edit(pol / "rules" / "tasks.yaml", "enrolment: 7", "enrolment: 8")
        assert policy().tasks.by_year["2026"]["530181001000"]["enrolment"] == 7  # kept for the run
        config.load_rules.cache_clear()  # the caches forgotten: read afresh
        assert policy().tasks.by_year["2026"]["530181001000"]["enrolment"] == 8
    finally:
        config.use_policy(None)
    assert policy().root == first.root
