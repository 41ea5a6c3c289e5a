"""The `coverage` command's reports: text, JSON and Markdown."""

from __future__ import annotations

from typing import Any

from reconciler.quoting import markdown_cell
from reconciler.routing.contacts import ContactSteps
from reconciler.routing.coverage import CoverageRow


def coverage_line(row: CoverageRow) -> str:
    """`spanish-billing: 9 → 2 (min 3) LOWERED BELOW MINIMUM — Language = ...`."""
    status = (
        "LOWERED BELOW MINIMUM"
        if row.lowered_below_minimum
        else "ok"
        if row.met
        else "below minimum"
    )
    scope = "" if row.counted == "all users" else f" [{row.counted} only]"
    counts = f"{row.now} → {row.after} (min {row.min_agents})"
    cause = f" ({CAUSES[row.cause]})" if row.cause else ""
    return f"{row.name}: {counts} {status}{cause}{scope} — {row.expression}"


# What an unmet row's cause means, in the reports' words.
CAUSES = {
    "plan": "caused by the plan",
    "worsened": "already unmet, the plan worsens it",
    "already unmet": "already unmet before the plan",
}


def coverage_report(rows: list[CoverageRow], declared: int, steps: ContactSteps | None) -> str:
    """The `coverage` command's report: the first `declared` rows are the
    manifests' requirements, the rest the contacts' routing steps."""
    lines = ["Routing requirements (eligible agents now → after the plan, minimum):"]
    lines += [f"  {'✓' if row.met else '✗'} {coverage_line(row)}" for row in rows[:declared]]
    if not declared:
        lines.append("  (none declared)")
    if steps is not None:
        lines += [
            "",
            f"Contacts: {steps.contacts} read, {steps.without_criteria} without routing criteria "
            f"(older API versions; skipped), {steps.unreadable} unreadable step(s).",
            "Routing steps seen on those contacts (contacts, eligible agents now → after):",
        ]
        for row in sorted(rows[declared:], key=lambda r: -steps.steps[r.name][1]):
            flag = "NO AGENT AFTER THE PLAN" if row.after == 0 else "ok"
            cause = CAUSES[row.cause] if row.cause else ""
            contacts = steps.steps[row.name][1]
            lines.append(
                f"  {contacts:6d}  {row.now:4d} → {row.after:<4d} {flag:24} {cause:34} {row.name}"
            )
    return "\n".join(lines)


def coverage_data(
    rows: list[CoverageRow], declared: int, steps: ContactSteps | None
) -> dict[str, Any]:
    """The `coverage --format json` document: requirements, and the contacts'
    routing steps when they were read."""
    requirements = [{**row.data, "met": row.met, "cause": row.cause} for row in rows[:declared]]
    data: dict[str, Any] = {"format_version": "1", "requirements": requirements, "contacts": None}
    if steps is not None:
        data["contacts"] = {
            "read": steps.contacts,
            "without_criteria": steps.without_criteria,
            "unreadable_steps": steps.unreadable,
            "steps": [
                {
                    **row.data,
                    "contacts": steps.steps[row.name][1],
                    "met": row.met,
                    "cause": row.cause,
                }
                for row in rows[declared:]
            ],
        }
    return data


def coverage_markdown(rows: list[CoverageRow], declared: int, steps: ContactSteps | None) -> str:
    """The `coverage --format markdown` report, for a PR or a job summary."""
    lines = ["### connect-reconciler routing coverage", ""]
    lines += [
        "| routing requirement | now | after | min | status | cause |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows[:declared]:
        status = "✅" if row.met else "⚠️ below"
        requirement = f"`{markdown_cell(row.name)}` {markdown_cell(row.expression)}"
        counts = f"{row.now} | {row.after} | {row.min_agents}"
        lines.append(f"| {requirement} | {counts} | {status} | {_cause(row)} |")
    if steps is not None:
        lines += [
            "",
            f"{steps.contacts} contacts read, {steps.without_criteria} without routing criteria, "
            f"{steps.unreadable} unreadable step(s).",
            "",
            "| routing step | contacts | now | after | status | cause |",
            "|---|---|---|---|---|---|",
        ]
        for row in sorted(rows[declared:], key=lambda r: -steps.steps[r.name][1]):
            status = "⛔ no agent after the plan" if row.after == 0 else "✅"
            counts = f"{steps.steps[row.name][1]} | {row.now} | {row.after}"
            lines.append(f"| {markdown_cell(row.name)} | {counts} | {status} | {_cause(row)} |")
    return "\n".join(lines)


def _cause(row: CoverageRow) -> str:
    return CAUSES[row.cause] if row.cause else ""
