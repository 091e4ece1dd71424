"""Every people-facing label and Chinese header, in one place.

Labels of statuses, exclusion reasons, groups, match rules and sources come
from the policy in force (``rules/*.yaml``, ``sources/*.yaml``); the fixed
headers of the CSV / xlsx / HTML outputs are the constants below. Parquet
columns stay the canonical English names (outputs.md).
"""

from __future__ import annotations

from .config import load_sources
from .policy import policy

# The city's total row: chosen by its code (street_code == CITY_CODE in cls_indicators and the
# progress frames), shown as CITY; never picked by the text.
CITY_CODE = "530181000000"  # 安宁市 itself: the city row of the indicators (cls_indicators, indicators.csv)
CITY = "全市"
UNASSIGNED_STREET = "未分配街道"
NO_COMMUNITY = "未填社区"

# ---------------------------------------------------------------- labels from the policy


def status_labels() -> dict[str, str]:
    """status → label (statuses.yaml), the excluded status included."""
    s = policy().statuses
    return {
        s.excluded: s.excluded_label, **{r.status: r.label for r in s.statuses},
        **{r.status: r.label for r in s.survey},
    }  # fmt: skip


def reason_labels() -> dict[str, str]:
    """exclusion reason → label (statuses.yaml)."""
    p = policy()
    return {
        **{r.reason: r.label for r in p.statuses.reasons},
        **{x.reason: x.label for x in p.survey.exclude},
    }


def group_labels() -> dict[int, str]:
    """group → ``第N类 label`` (groups.yaml)."""
    return {
        g.group: f"第{g.group}类 {g.label}" for g in sorted(policy().groups.groups, key=lambda g: g.group)
    }


def group_actions() -> dict[int, str]:
    """group → its suggested action (groups.yaml)."""
    return {g.group: g.action for g in policy().groups.groups}


def rule_labels() -> dict[str, str]:
    """match rule → label (matching.yaml), also for a rule with the name evidence that made it
    hold (``exact_id+placeholder`` → ``身份证号一致; 姓名中的占位符 …``)."""
    from .config import load_rules

    base = {r.rule: r.label for r in policy().matching.rules}
    evidence = load_rules("matching").get("name_evidence") or {}
    out = dict(base)
    for rule, label in base.items():
        for ev, ev_label in evidence.items():
            out[f"{rule}+{ev}"] = f"{label}; {ev_label}"
    return out


def source_labels() -> dict[str, str]:
    """source → its Chinese label (sources/*.yaml)."""
    return {name: s.label for name, s in load_sources().items()}


def status_text(status: str | None, reason: str | None) -> str:
    """``未参保``, or ``不纳入(死亡)`` with the exclusion reason."""
    if not status:
        return ""
    label = status_labels().get(status, status)
    if reason:
        label += f"({reason_labels().get(reason, reason)})"
    return label


# ---------------------------------------------------------------- fixed labels

OUTCOME_LABELS = {
    "linked": "已匹配", "new_person": "新增人员", "duplicate": "重复行", "quarantined": "隔离",
    "review": "待复核", "unmatched": "未匹配",
}  # fmt: skip
QUARANTINE_REASON_LABELS = {
    "empty_row": "空行", "total_row": "合计行", "no_identity": "无身份证号也无姓名",
    "base_id_unusable": "户籍记录身份证号不可用", "exact_duplicate": "完全重复行",
    "id_check_failed_no_match": "身份证号校验错误且找不到本人", "id_damaged_no_match": "身份证号被Excel损坏且找不到本人",
    "no_id_no_match": "无可用身份证号且找不到本人",
}  # fmt: skip
ID_KIND_LABELS = {
    "valid": "有效", "upgraded": "15位升18位", "bad_check": "校验位错误", "excel": "Excel损坏", "unusable": "不可用",
}  # fmt: skip
REVIEW_REASON_LABELS = {
    "several candidates agree": "多个候选人都一致", "rule needs a person to confirm": "规则要求人工确认",
    "ID matches but the name differs": "身份证号一致但姓名不同",
    "possibly a corrected ID number": "可能是更正过的身份证号",
    "only the address code survives and the name does not single the person out": "号码只剩地址码, 姓名不足以认定本人",
    "the ID number belongs to several people in the household extract (重号) and the name does not tell which":
        "户籍中几人同号(重号), 姓名无法确定是哪一人", "possibly two people with one ID number": "可能重号",
}  # fmt: skip
# The why of a 复核提示 (link_evidence): an enrolment row the run saw and did not accept. The hand-off
# is read by street visitors, so the reason is shown in Chinese (review reasons: REVIEW_REASON_LABELS).
EVIDENCE_LABELS = {
    "not accepted: same name, same or near birth date": "未采纳:同名,出生日期相同或相近",
    "not accepted: name with placeholders fits, ID begins alike": "未采纳:含缺字符号的姓名相符,身份证号前几位相同",
    "not accepted: same name, ID two characters or fewer from theirs": "未采纳:同名,身份证号相差不超过两位",
    "not accepted: same name, the surviving ID digits agree": "未采纳:同名,残存的身份证号数字一致",
    "not accepted: a member of the household of the ID's owner with that name": "未采纳:号码主人同户成员中有此姓名",
    "not accepted: their former name, ID begins alike": "未采纳:与其曾用名相同,身份证号前几位相同",
    "not accepted: same name once its parts are put together": "未采纳:拆字合并后姓名相同",
    "not accepted: ID one character from theirs": "未采纳:身份证号仅差一位",
    "not accepted: the surviving ID digits, street, community and surname fit them alone":
        "未采纳:残存的身份证号数字、街道、社区和姓氏只符合此人",
}  # fmt: skip
EXTRA_RULE_LABELS = {
    "population_base": "户籍人口(人口基础)", "new_person": "新增人员(来源带入)", "review_decision": "人工复核确认",
}  # fmt: skip

# ---------------------------------------------------------------- headers of the outputs

STREET_CODE_HEADER = "街道代码"  # indicators.csv

RECON_HEADERS = {
    "source": "来源", "file": "文件", "sheet": "工作表", "rows_read": "读取行数", "linked": "已匹配", "new_person": "新增人员",
    "duplicate": "重复行", "quarantined": "隔离", "review": "待复核", "unmatched": "未匹配", "balanced": "是否平衡", "note": "说明",
}  # fmt: skip


def employer_headers() -> dict[str, str]:
    """employers.csv: the threshold of groups.yaml in the header."""
    months = policy().groups.employer_min_withheld_months
    return {"employer": "扣缴义务人(单位)", "registry_persons": f"实名库中扣缴满{months}个月人数"}


# The hand-off's columns before the survey ones (outputs.md "The hand-off CSV"), in order: a
# persons.parquet column (e.g. one declared in stages/classify.py PERSON_COLUMNS) is shown in
# the hand-off by giving it a header here; a true/false column shows HANDOFF_YES or nothing.
HANDOFF_HEADERS = {
    "person_key": "编号", "name": "姓名", "id_number": "身份证号", "sex": "性别", "age": "年龄",
    "community": "社区", "address": "户籍地址", "status": "参保状态", "review_evidence": "复核提示",
    "shared_id": "身份证重号", "group": "重点群体", "sources": "信息来源", "pension_date": "法定退休时间",
    "measure": "建议措施",
}  # fmt: skip
HANDOFF_YES = "是"
MEASURE_HEADER = HANDOFF_HEADERS["measure"]
# This year's key target (rules/targets.yaml), e.g. "A 重点"; the registry a hand-off belongs to.
HANDOFF_PRIORITY_HEADER = "重点等级"
HANDOFF_REGISTRY_HEADER = "实名库批次"

# report.html: its sections (id → title) and the headers of its fixed tables.
REPORT_SECTIONS = {
    "overview": "概况", "indicators": "参保率与职工占比", "registry": "实名库", "survey": "入户调查进度",
    "quality": "数据质量", "matching": "匹配方法", "reconciliation": "对账",
}  # fmt: skip
# the registry per street; between 户籍合计 and 含非户籍合计 a column per group (group_labels)
REPORT_REGISTRY_HEADERS = {"street_name": "街道", "registry": "户籍合计", "registry_all": "含非户籍合计"}
REPORT_STATUS_HEADERS = {"status": "参保状态", "n": "人数"}
REPORT_SOURCE_HEADERS = {
    "source": "来源", "files": "文件数", "rows_read": "行数", "used": "已使用(匹配或新增)",
    "duplicates": "完全重复行", "quarantined": "隔离行", "review": "待复核",
}  # fmt: skip
REPORT_RULE_HEADERS = {"rule": "规则", "label": "说明", "n": "行数", "confidence": "平均置信度"}
REPORT_REVIEW_REASON_HEADERS = {"reason": "原因", "n": "行数"}
REPORT_FLAGGED_HEADERS = {"street": "街道", "n": "人数"}

# report.html's survey section (survey_progress.survey_table): per street, per community.
SURVEY_PROGRESS_HEADERS = {
    "street_name": "街道", "registry": "实名库人数", "visited": "已走访", "answered": "已答复",
    "left_to_visit": "待走访", "visited_share": "走访率",
}  # fmt: skip

# kuomian progress's bulletin (bulletin.xlsx / bulletin.html).
BULLETIN_STREET_HEADERS = {
    "street_name": "街道",
    "registry": "实名库人数",
    "enrolled": "新增参保(列入后)",
    "enrolled_employee": "其中职工养老",
    "enrolled_resident": "其中居民养老",
    "enrolled_elsewhere": "其中外地参保(自报)",
    "switched": "居民转职工",
    "employee_total": "职工养老合计",
    "task_enrolment": "参保任务",
    "task_enrolment_basis": "参保任务来源",
    "completion": "参保任务完成率",
    "task_employee": "职工养老任务",
    "task_employee_basis": "职工任务来源",
    "employee_completion": "职工任务完成率",
    "rank": "排名",
    "change_enrolled": "较上期新增参保",
    "change_completion": "较上期完成率",
    "surveyed": "已走访",
    "answered": "已答复",
    "left_to_visit": "待走访",
}
BULLETIN_COMMUNITY_HEADERS = {
    "street_name": "街道",
    "community": "社区",
    "registry": "实名库人数",
    "enrolled": "新增参保(列入后)",
    "enrolled_employee": "其中职工养老",
    "enrolled_resident": "其中居民养老",
    "enrolled_elsewhere": "其中外地参保(自报)",
    "switched": "居民转职工",
    "enrolled_share": "新增参保占实名库",
    "rank": "街道内排名",
    "change_enrolled": "较上期新增参保",
    "surveyed": "已走访",
    "answered": "已答复",
    "left_to_visit": "待走访",
}
BULLETIN_SURVEY_HEADERS = {
    "street_name": "街道",
    "registry": "实名库人数",
    "surveyed": "已走访",
    "answered": "已答复",
    "left_to_visit": "待走访",
}

# review.xlsx: (column, header) in sheet order; the decisions its last column accepts.
REVIEW_DECISIONS = ("是", "否", "不确定")
REVIEW_COLUMNS = [
    ("review_id", "复核编号"), ("source", "来源"), ("file", "文件"), ("sheet", "工作表"), ("row", "行号"),
    ("match_rule", "提出规则"), ("review_reason", "复核原因"),
    ("r_name", "记录姓名"), ("p_name", "候选人姓名"),
    ("r_id", "记录身份证号"), ("p_id", "候选人身份证号"), ("id_diff", "身份证号差异"),
    ("r_birth", "记录出生日期"), ("p_birth", "候选人出生日期"),
    ("r_street", "记录街道"), ("p_street", "候选人街道"),
    ("r_community", "记录社区"), ("p_community", "候选人社区"),
    ("name_score", "姓名相似度"), ("person_key", "候选人编号"), ("decision", "决定(是/否/不确定)"),
]  # fmt: skip

# ``kuomian check``: the columns added to the list.
CHECK_RESULT_COLUMNS = ["匹配结果", "参保状态", "重点群体", "所属街道", "是否在实名库"]
CHECK_REVIEW = "待人工核实"
CHECK_UNMATCHED = "未匹配"

# ``kuomian compare``.
COMPARE_LISTS = {
    "newly_enrolled": "新参保",
    "newly_listed": "新入库",
    "left_registry": "其他原因出库",
    "group_changed": "群体变化",
    "street_changed": "街道变化",
}
COMPARE_PERSON_HEADERS = {
    "person_key": "编号", "name": "姓名", "id_masked": "身份证号", "o_street": "原街道", "n_street": "现街道",
    "community": "社区", "o_status": "原参保状态", "n_status": "现参保状态", "o_group": "原重点群体",
    "n_group": "现重点群体", "note": "说明",
}  # fmt: skip
COMPARE_STREET_HEADERS = {
    "street_name": "街道", "registry_old": "原实名库人数", "registry_new": "现实名库人数", "newly_enrolled": "新参保",
    "newly_listed": "新入库", "left_registry": "其他原因出库", "group_changed": "群体变化", "moved_in": "迁入",
    "moved_out": "迁出",
}  # fmt: skip
NOT_IN_POPULATION = "不再在人口名单中"
# compare's indicators.csv: the columns of the two runs' indicators.csv shown side by side; the rates.
COMPARE_INDICATORS = [
    "户籍人口", "应参保人数", "已参保人数", "参保率", "缴费阶段人数", "职工养老缴费人数", "职工占比",
    "实名库人数(户籍)", "实名库人数(含非户籍)",
]  # fmt: skip
COMPARE_RATES = {"参保率", "职工占比"}

# kuomian progress: outcomes of the enrolment extract's rows, in the order of its reconciliation
PROGRESS_OUTCOMES = {
    "registry": "匹配到实名库人员",
    "not_registry": "匹配到实名库外人员",
    "unmatched": "未匹配",
    "review": "待复核",
    "duplicate": "重复行",
    "quarantined": "隔离",
}
PROGRESS_RECON_HEADERS = {
    "file": "文件",
    "rows_read": "读取行数",
    **PROGRESS_OUTCOMES,
    "balanced": "是否平衡",
}


def indicator_headers() -> dict[str, str]:
    """indicators.csv: column → Chinese header (the target years and groups from the policy)."""
    p = policy()
    h = {
        "street_code": STREET_CODE_HEADER, "street_name": "街道", "household_persons": "户籍人口",
        "eligible": "应参保人数", "enrolled": "已参保人数", "coverage_rate": "参保率",
        "contribution_stage": "缴费阶段人数", "employee": "职工养老缴费人数", "employee_share": "职工占比",
    }  # fmt: skip
    for year in p.indicators.coverage_targets:
        h[f"coverage_gap_{year}"] = f"距{year}年参保率目标缺口(人)"
    for year in p.indicators.employee_share_targets:
        h[f"employee_gap_{year}"] = f"距{year}年职工占比目标缺口(人)"
    h["registry"] = "实名库人数(户籍)"
    for g, label in group_labels().items():
        h[f"registry_group_{g}"] = label
    h["registry_all"] = "实名库人数(含非户籍)"
    return h


def survey_effects_headers() -> dict[str, str]:
    """report.html's survey effects (survey_progress.survey_effects_table): column → header."""
    p = policy()
    out = {"street_name": "街道"}
    for k, label in p.targets.levels.items():
        out[f"target_{k}"] = f"{k} {label}"
        out[f"target_{k}_enrolled"] = f"上年{k}级已参保"
    out["enrolled_elsewhere"] = "外地参保(自报)"
    out.update({x.reason: x.label for x in p.survey.exclude})
    out["not_found"] = "两次走访未见到"
    return out
