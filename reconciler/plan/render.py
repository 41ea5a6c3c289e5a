"""Plan renderers: text (a terminal, Terraform-like), JSON, Markdown (PRs)."""

from __future__ import annotations

import json
from typing import ClassVar

import click

from reconciler.coverage import ContactSteps, CoverageRow
from reconciler.plan.changes import AttributeChange, ProficiencyEntry, UserProficiencyChange
from reconciler.plan.plan import Plan

# GitHub refuses comments over 65,536 characters; leave room for a wrapper.
MARKDOWN_LIMIT = 60_000
# Hidden in rendered Markdown; a CI job finds its own PR comment by it.
MARKDOWN_MARKER = "<!-- connect-reconciler-plan -->"


def level(value: float) -> str:
    """4.0 -> "4"; levels are whole numbers in practice."""
    return f"{value:g}"


def entry_text(kind: str, entry: ProficiencyEntry) -> str:
    """One proficiency line of a user change, without its sign."""
    name = f"{entry.attribute}/{entry.value}"
    if kind == "associate":
        return f"{name} = {level(entry.level)}"
    if kind == "update":
        return f"{name}: {level(entry.before or 0)} → {level(entry.level)}"
    return f"{name} (was {level(entry.level)})"


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
    return f"{row.name}: {counts} {status}{scope} — {row.expression}"


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
            contacts = steps.steps[row.name][1]
            lines.append(f"  {contacts:6d}  {row.now:4d} → {row.after:<4d} {flag:24} {row.name}")
    return "\n".join(lines)


def narrowing_lines(plan: Plan) -> list[str]:
    """What a narrowed plan covers and what waits for a full plan (as
    Terraform warns for -target), or nothing for a full plan."""
    narrowing = plan.narrowing
    if narrowing is None:
        return []
    scope = []
    if narrowing["changed_since"] is not None:
        scope.append(f"changes since {narrowing['changed_since']}")
    if narrowing["users"] is not None:
        listed = f": {_names(narrowing['users'])}" if narrowing["users"] else ""
        scope.append(f"{len(narrowing['users'])} user(s){listed}")
    if narrowing["attributes"] is not None:
        scope.append(f"attribute(s): {_names(narrowing['attributes'])}")
    if narrowing["declarations"]:
        scope.append(f"changed attribute declaration(s): {_names(narrowing['declarations'])}")
    lines = [
        f"NARROWED PLAN: only {'; '.join(scope)}. Guards still count the whole instance; "
        "run a full plan to converge everything."
    ]
    lines += [f"narrowed because {reason}" for reason in narrowing["reasons"]]
    lines += [f"deferred to a full plan: {item}" for item in narrowing["deferred"]]
    return lines


def _names(items: list[str], shown: int = 10) -> str:
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more


def coverage_data(rows: list[CoverageRow], declared: int, steps: ContactSteps | None) -> dict:
    """The `coverage --format json` document: requirements, and the contacts'
    routing steps when they were read."""
    requirements = [{**row.data, "met": row.met} for row in rows[:declared]]
    data: dict = {"format_version": "1", "requirements": requirements, "contacts": None}
    if steps is not None:
        data["contacts"] = {
            "read": steps.contacts,
            "without_criteria": steps.without_criteria,
            "unreadable_steps": steps.unreadable,
            "steps": [
                {**row.data, "contacts": steps.steps[row.name][1], "met": row.met}
                for row in rows[declared:]
            ],
        }
    return data


def coverage_markdown(rows: list[CoverageRow], declared: int, steps: ContactSteps | None) -> str:
    """The `coverage --format markdown` report, for a PR or a job summary."""
    lines = ["### connect-reconciler routing coverage", ""]
    lines += ["| routing requirement | now | after | min | status |", "|---|---|---|---|---|"]
    for row in rows[:declared]:
        status = "✅" if row.met else "⚠️ below"
        requirement = f"`{_escape(row.name)}` {_escape(row.expression)}"
        lines.append(f"| {requirement} | {row.now} | {row.after} | {row.min_agents} | {status} |")
    if steps is not None:
        lines += [
            "",
            f"{steps.contacts} contacts read, {steps.without_criteria} without routing criteria, "
            f"{steps.unreadable} unreadable step(s).",
            "",
            "| routing step | contacts | now | after | status |",
            "|---|---|---|---|---|",
        ]
        for row in sorted(rows[declared:], key=lambda r: -steps.steps[r.name][1]):
            status = "⛔ no agent after the plan" if row.after == 0 else "✅"
            lines.append(
                f"| {_escape(row.name)} | {steps.steps[row.name][1]} | {row.now} | {row.after} "
                f"| {status} |"
            )
    return "\n".join(lines)


def summary_line(plan: Plan) -> str:
    """`1 attribute to create, ...; 12 users to change (...), 30 unchanged`."""
    s = plan.summary
    attributes = (
        f"{s['creates']} attribute(s) to create, {s['updates']} to update, {s['deletes']} to delete"
    )
    users = (
        f"{s['users_changed']} user(s) to change ({s['associations']} associations, "
        f"{s['level_updates']} level updates, {s['disassociations']} disassociations), "
        f"{s['no_op_users']} unchanged"
    )
    tags = ""
    if plan.owner_tags:
        tags = f"; {len(plan.owner_tags)} user(s) to tag owner={plan.owner_tags[0].owner}"
    return f"{attributes}; {users}{tags}"


def attribute_lines(change: AttributeChange) -> list[str]:
    """The detail lines under an attribute change."""
    if change.kind == "create_attribute" and change.after is not None:
        lines = [f"values: {_listed(change.after.values)}"]
        if change.after.purposes:
            lines.append(f"purposes: {', '.join(change.after.purposes)}")
        return lines
    if change.kind == "delete_attribute":
        return [f"values: {', '.join(change.before.values) if change.before else ''}"]
    lines = [f"+ value {v}" for v in change.added_values] + [
        f"- value {v}" for v in change.removed_values
    ]
    before, after = change.before, change.after
    if before and after and set(before.purposes) != set(after.purposes):
        lines.append(f"~ purposes: {_listed(before.purposes)} → {_listed(after.purposes)}")
    if (
        before
        and after
        and before.enable_value_validation_on_association
        != after.enable_value_validation_on_association
    ):
        lines.append(
            "~ enable_value_validation_on_association → "
            f"{after.enable_value_validation_on_association}"
        )
    return lines


_SIGNS = {"create_attribute": "+", "update_attribute": "~", "delete_attribute": "-"}
_VERBS = {"create_attribute": "create", "update_attribute": "update", "delete_attribute": "delete"}
_ENTRY_SIGNS = {"associate": "+", "update": "~", "disassociate": "-"}


class TextRenderer:
    """Terraform-like text; colours only when writing to a terminal."""

    name: ClassVar[str] = "text"

    def __init__(self, color: bool = False) -> None:
        self.color = color

    def _paint(self, sign: str, text: str) -> str:
        colour = {"+": "green", "~": "yellow", "-": "red", "!": "red"}.get(sign)
        return click.style(text, fg=colour) if self.color and colour else text

    def render(self, plan: Plan) -> str:
        lines = [f"Instance {plan.instance_id} ({plan.region or 'region from profile'})", ""]
        narrowed = narrowing_lines(plan)
        if narrowed:
            lines += [self._paint("!", f"! {narrowed[0]}")]
            lines += [f"    {line}" for line in narrowed[1:]] + [""]
        for tag in plan.owner_tags:
            taken = f" (taken from {tag.previous_owner})" if tag.previous_owner else ""
            lines.append(self._paint("+", f"  + tag user {tag.username} owner={tag.owner}{taken}"))
        for change in plan.changes:
            if isinstance(change, AttributeChange):
                sign = _SIGNS[change.kind]
                when = (
                    " (after users)"
                    if change.kind == "update_attribute" and change.phase == 3
                    else ""
                )
                lines.append(
                    self._paint(
                        sign, f"  {sign} {_VERBS[change.kind]} attribute {change.name}{when}"
                    )
                )
                lines += [f"      {line}" for line in attribute_lines(change)]
            else:
                lines.append(self._paint("~", f"  ~ user {change.username}"))
                for kind, entries in change.steps:
                    sign = _ENTRY_SIGNS[kind]
                    lines += [
                        self._paint(sign, f"      {sign} {entry_text(kind, e)}") for e in entries
                    ]
                if change.disassociate_first:
                    lines.append(
                        "      (disassociations first: associating first would pass the "
                        "per-user cap)"
                    )
        if not plan.has_changes:
            lines.append("  No changes. Connect matches the manifests.")
        if plan.unmanaged_attributes:
            lines += ["", f"Not managed here, left alone: {', '.join(plan.unmanaged_attributes)}"]
        if plan.read is not None:
            lines += ["", f"Live state: {plan.read.describe()}."]
        if plan.coverage:
            lines += ["", "Routing requirements (eligible agents now → after, minimum):"]
            for row in plan.coverage:
                sign = "!" if row.lowered_below_minimum else "~" if not row.met else " "
                lines.append(self._paint(sign, f"  {sign} {coverage_line(row)}"))
        if plan.guards:
            lines += ["", "Guards that refuse apply (override with --force):"]
            lines += [self._paint("!", f"  ! {g.guard}: {g.message}") for g in plan.guards]
        if plan.errors:
            lines += ["", "Errors:"]
            lines += [self._paint("!", f"  ✗ {error}") for error in plan.errors]
        narrowed_note = " (narrowed)" if plan.narrowing is not None else ""
        lines += ["", f"Plan{narrowed_note}: {summary_line(plan)}."]
        return "\n".join(lines)


class JsonRenderer:
    """The documented JSON (docs/plan-format.md); stdout carries only this."""

    name: ClassVar[str] = "json"

    def render(self, plan: Plan) -> str:
        return json.dumps(plan.to_data(), indent=2)


class MarkdownRenderer:
    """For a PR comment or $GITHUB_STEP_SUMMARY: summary first, details
    collapsed, capped in size with a note of what was cut."""

    name: ClassVar[str] = "markdown"

    def __init__(self, limit: int = MARKDOWN_LIMIT) -> None:
        self.limit = limit

    def render(self, plan: Plan) -> str:
        head = [
            MARKDOWN_MARKER,
            f"### connect-reconciler plan for `{plan.instance_id}`",
            "",
            f"**{summary_line(plan)}**",
            "",
        ]
        narrowed = narrowing_lines(plan)
        if narrowed:
            head += ["> [!IMPORTANT]", f"> **{_escape(narrowed[0])}**"]
            head += [f"> - {_escape(line)}" for line in narrowed[1:]]
            head.append("")
        if plan.errors:
            head += ["> [!CAUTION]", "> **Errors: this plan cannot be applied.**"]
            head += [f"> - {_escape(e)}" for e in plan.errors]
            head.append("")
        if plan.guards:
            head += ["> [!WARNING]", "> **Guards refuse this apply without `--force`:**"]
            head += [f"> - `{g.guard}`: {_escape(g.message)}" for g in plan.guards]
            head.append("")
        if not plan.has_changes:
            head.append("No changes. Connect matches the manifests.")
        if plan.owner_tags:
            head += [
                f"<details><summary>Owner tags ({len(plan.owner_tags)})</summary>",
                "",
                "| user | owner | taken from |",
                "|---|---|---|",
                *(
                    f"| {_escape(t.username)} | {_escape(t.owner)} | "
                    f"{_escape(t.previous_owner or '')} |"
                    for t in plan.owner_tags
                ),
                "",
                "</details>",
                "",
            ]
        if plan.read is not None:
            head += [f"Live state: {_escape(plan.read.describe())}.", ""]
        if plan.coverage:
            head += [
                "| routing requirement | now | after | min | status |",
                "|---|---|---|---|---|",
            ]
            for row in plan.coverage:
                status = (
                    "⛔ lowered below minimum"
                    if row.lowered_below_minimum
                    else "✅"
                    if row.met
                    else "⚠️ below"
                )
                requirement = f"`{_escape(row.name)}` {_escape(row.expression)}"
                head.append(
                    f"| {requirement} | {row.now} | {row.after} | {row.min_agents} | {status} |"
                )
            head.append("")
        attributes = plan.attribute_changes
        if attributes:
            head += [f"<details><summary>Attribute changes ({len(attributes)})</summary>", "",
                     "| | attribute | change |", "|---|---|---|"]  # fmt: skip
            for change in attributes:
                detail = "<br>".join(_escape(line) for line in attribute_lines(change))
                head.append(f"| {_SIGNS[change.kind]} | {_escape(change.name)} | {detail} |")
            head += ["", "</details>", ""]
        users = plan.user_changes
        if not users:
            return "\n".join(head)
        rows = [self._user_row(c) for c in users]
        opening = [f"<details><summary>User changes ({len(users)})</summary>", "",
                   "| user | associate | update | disassociate |", "|---|---|---|---|"]  # fmt: skip
        closing = ["", "</details>", ""]
        budget = self.limit - len("\n".join(head + opening + closing)) - 200
        shown = []
        for row in rows:
            budget -= len(row) + 1
            if budget < 0:
                break
            shown.append(row)
        cut = []
        if len(shown) < len(rows):
            cut = [
                "",
                f"_{len(rows) - len(shown)} more user change(s) not shown to keep this under "
                f"{self.limit:,} characters; run `plan --format json` for the whole plan._",
            ]
        return "\n".join(head + opening + shown + cut + closing)

    def _user_row(self, change: UserProficiencyChange) -> str:
        def cell(kind: str, entries: tuple[ProficiencyEntry, ...]) -> str:
            return "<br>".join(_escape(entry_text(kind, e)) for e in entries)

        return (
            f"| {_escape(change.username)} | {cell('associate', change.associate)} | "
            f"{cell('update', change.update)} | {cell('disassociate', change.disassociate)} |"
        )


def _listed(items: tuple[str, ...]) -> str:
    return ", ".join(items) or "(none)"


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;")


RENDERERS = {r.name: r for r in (TextRenderer, JsonRenderer, MarkdownRenderer)}


def renderer_for(fmt: str, terminal: bool) -> TextRenderer | JsonRenderer | MarkdownRenderer:
    """The renderer for `--format fmt`; text is coloured only on a terminal."""
    return TextRenderer(color=terminal) if fmt == "text" else RENDERERS[fmt]()
