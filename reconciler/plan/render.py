"""Plan renderers: text (a terminal, Terraform-like), JSON, Markdown (PRs).

Each is a small class with a `name` and a `render(plan)`; the `Renderer`
protocol is the whole contract, so a new format is one more class.
"""

from __future__ import annotations

import json
from typing import ClassVar, Protocol

import click

from reconciler.plan.causes import Cause
from reconciler.plan.changes import (
    AttributeChange,
    Change,
    ChangeKind,
    Phase,
    ProficiencyEntry,
    UserProficiencyChange,
    UserStep,
)
from reconciler.plan.guards import emptied_users
from reconciler.plan.plan import Plan
from reconciler.quoting import counted, markdown_cell, names
from reconciler.routing.report import coverage_line

# GitHub refuses comments over 65,536 characters; leave room for a wrapper.
MARKDOWN_LIMIT = 60_000
# Hidden in rendered Markdown; a CI job finds its own PR comment by it.
MARKDOWN_MARKER = "<!-- connect-reconciler-plan -->"


def level(value: float) -> str:
    """4.0 -> "4"; levels are whole numbers in practice."""
    return f"{value:g}"


class Renderer(Protocol):
    """Turns a plan into text for one `--format`."""

    name: ClassVar[str]

    def render(self, plan: Plan) -> str: ...


def entry_text(step: UserStep, entry: ProficiencyEntry) -> str:
    """One proficiency line of a user change, without its sign."""
    name = f"{entry.attribute}/{entry.value}"
    if step is UserStep.ASSOCIATE:
        return f"{name} = {level(entry.level)}"
    if step is UserStep.UPDATE:
        return f"{name}: {level(entry.before or 0)} → {level(entry.level)}"
    return f"{name} (was {level(entry.level)})"


def narrowing_lines(plan: Plan) -> list[str]:
    """What a narrowed plan covers and what waits for a full plan (as
    Terraform warns for -target), or nothing for a full plan."""
    narrowing = plan.narrowing
    if narrowing is None:
        return []
    scope = []
    if narrowing.changed_since is not None:
        scope.append(f"changes since {narrowing.changed_since}")
    if narrowing.users is not None:
        listed = f": {names(narrowing.users)}" if narrowing.users else ""
        scope.append(f"{len(narrowing.users)} user(s){listed}")
    if narrowing.attributes is not None:
        scope.append(f"attribute(s): {names(narrowing.attributes)}")
    if narrowing.declarations:
        scope.append(f"changed attribute declaration(s): {names(narrowing.declarations)}")
    lines = [
        f"NARROWED PLAN: only {'; '.join(scope)}. Guards still count the whole instance; "
        "run a full plan to converge everything."
    ]
    lines += [f"narrowed because {reason}" for reason in narrowing.reasons]
    lines += [f"deferred to a full plan: {item}" for item in plan.deferred]
    return lines


def summary_line(plan: Plan) -> str:
    """`1 attribute to create, ...; 12 users to change (...), 30 unchanged`."""
    s = plan.summary
    attributes = (
        f"{counted(s['creates'], 'attribute')} to create, {s['updates']} to update, "
        f"{s['deletes']} to delete"
    )
    users = (
        f"{counted(s['users_changed'], 'user')} to change "
        f"({counted(s['associations'], 'association')}, "
        f"{counted(s['level_updates'], 'level update')}, "
        f"{counted(s['disassociations'], 'disassociation')}), {s['no_op_users']} unchanged"
    )
    if s["users_no_longer_managed"]:
        users += f", {s['users_no_longer_managed']} no longer managed (left as is)"
    tags = ""
    if plan.owner_tags:
        tags = f"; {counted(len(plan.owner_tags), 'user')} to tag owner={plan.owner_tags[0].owner}"
    return f"{attributes}; {users}{tags}"


def no_changes_line(plan: Plan) -> str | None:
    """What a plan without changes says, or None when it has changes or
    errors: "No changes" only when nothing waits for a full plan either."""
    if plan.has_changes or plan.errors:
        return None
    if plan.deferred:
        return f"No changes in scope, {len(plan.deferred)} deferred to a full plan."
    return "No changes. Connect matches the manifests."


DRIFT_HEADING = "Changed outside connect-reconciler"


def drift_note(plan: Plan) -> str:
    """Under DRIFT_HEADING: what it means."""
    return (
        f"the manifests at {plan.base} already wanted what these changes set; "
        "Connect was changed since, and apply sets it back"
    )


def by_cause(plan: Plan) -> tuple[list[Change], list[Change]]:
    """(changes the manifests make, changes that undo drift): a change whose
    only cause is drift is listed apart, as Terraform lists what changed
    outside it."""
    made: list[Change] = []
    drifted: list[Change] = []
    for change in plan.changes:  # one pass: a plan may hold 10,000 user changes
        (drifted if plan.why_of(change).cause is Cause.DRIFT else made).append(change)
    return made, drifted


def cause_suffix(plan: Plan, change: Change) -> str:
    return (
        " (also changed outside connect-reconciler)"
        if plan.why_of(change).cause is Cause.BOTH
        else ""
    )


def left_alone_lines(plan: Plan) -> list[str]:
    """What the plan leaves as it is: no longer managed, and not managed
    here; and first, loudly, who it leaves with nothing."""
    lines = []
    emptied = emptied_users(plan.changes)
    if emptied:
        lines.append(f"Users losing every proficiency: {names(emptied)}")
    left = plan.no_longer_managed
    if left.users:
        lines.append(f"No longer managed (left as is): users {names(left.users)}")
    if left.attributes:
        lines.append(f"No longer managed (left as is): attributes {names(left.attributes)}")
    if plan.unmanaged_attributes:
        lines.append(f"Not managed here, left alone: {', '.join(plan.unmanaged_attributes)}")
    return lines


def attribute_lines(change: AttributeChange) -> list[str]:
    """The detail lines under an attribute change."""
    if change.kind is ChangeKind.CREATE_ATTRIBUTE and change.after is not None:
        lines = [f"values: {_listed(change.after.values)}"]
        if change.after.purposes:
            lines.append(f"purposes: {', '.join(change.after.purposes)}")
        return lines
    if change.kind is ChangeKind.DELETE_ATTRIBUTE:
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


class TextRenderer:
    """Terraform-like text; colours only when writing to a terminal."""

    name: ClassVar[str] = "text"

    def __init__(self, color: bool = False) -> None:
        self.color = color

    def _paint(self, sign: str, text: str) -> str:
        colour = {"+": "green", "~": "yellow", "-": "red", "!": "red"}.get(sign)
        return click.style(text, fg=colour) if self.color and colour else text

    def _change_lines(self, plan: Plan, change: Change) -> list[str]:
        suffix = cause_suffix(plan, change)
        if isinstance(change, AttributeChange):
            sign = change.kind.sign
            when = (
                " (after users)"
                if change.kind is ChangeKind.UPDATE_ATTRIBUTE and change.phase == Phase.REMOVE
                else ""
            )
            head = f"  {sign} {change.kind.verb} attribute {change.name}{when}{suffix}"
            return [self._paint(sign, head)] + [f"      {line}" for line in attribute_lines(change)]
        sources = plan.why_of(change).sources
        lines = [self._paint("~", f"  ~ user {change.username}{suffix}")]
        for step, entries in change.steps:
            for e in entries:
                given = sources.get(f"{e.attribute}/{e.value}")
                from_ = f"   ({given})" if given else ""
                lines.append(
                    self._paint(step.sign, f"      {step.sign} {entry_text(step, e)}{from_}")
                )
        if change.disassociate_first:
            lines.append(
                "      (disassociations first: associating first would pass the per-user cap)"
            )
        return lines

    def summary(self, plan: Plan) -> str:
        """The last line alone (what `-q` prints)."""
        narrowed_note = " (narrowed)" if plan.narrowing is not None else ""
        return f"Plan{narrowed_note}: {summary_line(plan)}."

    def render(self, plan: Plan) -> str:
        environment = f"Environment {plan.environment}: " if plan.environment else ""
        region = plan.region or "region from profile"
        lines = [f"{environment}Instance {plan.instance_id} ({region})", ""]
        narrowed = narrowing_lines(plan)
        if narrowed:
            lines += [self._paint("!", f"! {narrowed[0]}")]
            lines += [f"    {line}" for line in narrowed[1:]] + [""]
        for tag in plan.owner_tags:
            taken = f" (taken from {tag.previous_owner})" if tag.previous_owner else ""
            sign = tag.kind.sign
            lines.append(self._paint(sign, f"  {sign} {tag.description}{taken}"))
        made, drifted = by_cause(plan)
        for change in made:
            lines += self._change_lines(plan, change)
        if drifted:
            lines += ["", f"{DRIFT_HEADING} ({drift_note(plan)}):"]
            for change in drifted:
                lines += self._change_lines(plan, change)
        empty = no_changes_line(plan)
        if empty is not None:
            lines.append(f"  {empty}")
        left = left_alone_lines(plan)
        if left:
            lines += ["", *left]
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
        lines += ["", self.summary(plan)]
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
            f"### connect-reconciler plan for `{plan.instance_id}`"
            + (f" (environment `{plan.environment}`)" if plan.environment else ""),
            "",
            f"**{summary_line(plan)}**",
            "",
        ]
        narrowed = narrowing_lines(plan)
        if narrowed:
            head += ["> [!IMPORTANT]", f"> **{markdown_cell(narrowed[0])}**"]
            head += [f"> - {markdown_cell(line)}" for line in narrowed[1:]]
            head.append("")
        if plan.errors:
            head += ["> [!CAUTION]", "> **Errors: this plan cannot be applied.**"]
            head += [f"> - {markdown_cell(e)}" for e in plan.errors]
            head.append("")
        if plan.guards:
            head += ["> [!WARNING]", "> **Guards refuse this apply without `--force`:**"]
            head += [f"> - `{g.guard}`: {markdown_cell(g.message)}" for g in plan.guards]
            head.append("")
        empty = no_changes_line(plan)
        if empty is not None:
            head += [empty, ""]
        left = left_alone_lines(plan)
        if left:
            head += [f"- {markdown_cell(line)}" for line in left] + [""]
        if plan.owner_tags:
            head += [
                f"<details><summary>Owner tags ({len(plan.owner_tags)})</summary>",
                "",
                "| user | owner | taken from |",
                "|---|---|---|",
                *(
                    f"| {markdown_cell(t.username)} | {markdown_cell(t.owner)} | "
                    f"{markdown_cell(t.previous_owner or '')} |"
                    for t in plan.owner_tags
                ),
                "",
                "</details>",
                "",
            ]
        if plan.read is not None:
            head += [f"Live state: {markdown_cell(plan.read.describe())}.", ""]
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
                requirement = f"`{markdown_cell(row.name)}` {markdown_cell(row.expression)}"
                head.append(
                    f"| {requirement} | {row.now} | {row.after} | {row.min_agents} | {status} |"
                )
            head.append("")
        made, drifted = by_cause(plan)
        sections = [("", made), (f"{DRIFT_HEADING}: ", drifted)]
        for title, changes in sections:
            attributes = [c for c in changes if isinstance(c, AttributeChange)]
            if not attributes:
                continue
            head += [f"<details><summary>{title}Attribute changes ({len(attributes)})</summary>",
                     "", "| | attribute | change |", "|---|---|---|"]  # fmt: skip
            for change in attributes:
                detail = "<br>".join(markdown_cell(line) for line in attribute_lines(change))
                name = markdown_cell(change.name + cause_suffix(plan, change))
                head.append(f"| {change.kind.sign} | {name} | {detail} |")
            head += ["", "</details>", ""]
        if drifted:
            head += [f"_{DRIFT_HEADING}: {markdown_cell(drift_note(plan))}._", ""]
        tables = []
        for title, changes in sections:
            users = [c for c in changes if isinstance(c, UserProficiencyChange)]
            if users:
                tables.append((title, [self._user_row(plan, c) for c in users]))
        if not tables:
            return "\n".join(head)
        openings = {
            title: [
                f"<details><summary>{title}User changes ({len(rows)})</summary>",
                "",
                "| user | associate | update | disassociate |",
                "|---|---|---|---|",
            ]
            for title, rows in tables
        }
        closing = ["", "</details>", ""]
        framing = sum(len("\n".join(o + closing)) for o in openings.values())
        budget = self.limit - len("\n".join(head)) - framing - 200
        body: list[str] = []
        cut = 0
        for title, rows in tables:
            shown = []
            for user_row in rows:
                budget -= len(user_row) + 1
                if budget < 0:
                    cut += 1
                    continue
                shown.append(user_row)
            if shown:
                body += openings[title] + shown + closing
        if cut:  # said inside the last table shown, before it closes
            body[len(body) - len(closing) : len(body) - len(closing)] = [
                "",
                f"_{counted(cut, 'more user change')} not shown to keep this under "
                f"{self.limit:,} characters; run `plan --format json` for the whole plan._",
            ]
        return "\n".join(head + body)

    def _user_row(self, plan: Plan, change: UserProficiencyChange) -> str:
        sources = plan.why_of(change).sources

        def cell(step: UserStep, entries: tuple[ProficiencyEntry, ...]) -> str:
            return "<br>".join(
                markdown_cell(entry_text(step, e))
                + (
                    f" ({markdown_cell(sources[key])})"
                    if (key := f"{e.attribute}/{e.value}") in sources
                    else ""
                )
                for e in entries
            )

        user = markdown_cell(change.username + cause_suffix(plan, change))
        return (
            f"| {user} | {cell(UserStep.ASSOCIATE, change.associate)} | "
            f"{cell(UserStep.UPDATE, change.update)} | "
            f"{cell(UserStep.DISASSOCIATE, change.disassociate)} |"
        )


def _listed(items: tuple[str, ...]) -> str:
    return ", ".join(items) or "(none)"


RENDERERS: dict[str, type[Renderer]] = {
    r.name: r for r in (TextRenderer, JsonRenderer, MarkdownRenderer)
}


def renderer_for(fmt: str, terminal: bool, limit: int = MARKDOWN_LIMIT) -> Renderer:
    """The renderer for `--format fmt`; text is coloured only on a terminal,
    Markdown kept within `limit` characters."""
    if fmt == "text":
        return TextRenderer(color=terminal)
    return MarkdownRenderer(limit) if fmt == "markdown" else RENDERERS[fmt]()
