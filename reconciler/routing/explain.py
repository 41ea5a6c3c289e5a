"""Why a routing step finds no agent: eligible agents now and after the plan,
what each condition allows alone, which condition limits most, and the agents
who miss by one condition, with what they lack.

Pure: it evaluates what the caller gathered (`Agents`: each referenced
proficiency's level per agent), so the same code explains any state.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from reconciler.quoting import markdown_cell
from reconciler.routing.expression import AllOf, AnyOf, Condition, Expression, to_text

FORMAT_VERSION = "1"
Key = tuple[str, str]


@dataclass
class Agents:
    """What is known of the agents an explanation counts: their usernames by
    id, and for each proficiency the expression names, each holder's level.
    `everyone`: the usernames are every user of the instance (what a NOT
    condition or a preferred-agent list is counted over); otherwise only
    those holding something the expression names."""

    usernames: dict[str, str]  # user id -> username
    levels: dict[Key, dict[str, float]]  # (attribute, value) -> user id -> level
    everyone: bool = False

    def level(self, key: Key, user_id: str) -> float | None:
        return self.levels.get(key, {}).get(user_id)

    def with_levels(self, changed: dict[str, dict[Key, float]]) -> Agents:
        """These agents with some users' proficiencies replaced (after a plan):
        `changed` maps a user id to all its levels of the referenced keys."""
        levels = {key: dict(holders) for key, holders in self.levels.items()}
        for user_id, held in changed.items():
            for key, holders in levels.items():
                if key in held:
                    holders[user_id] = held[key]
                else:
                    holders.pop(user_id, None)
        return Agents(self.usernames, levels, self.everyone)


def conditions(expression: Expression) -> list[Condition]:
    """The expression's distinct leaf conditions, in the order they appear."""
    if isinstance(expression, AllOf | AnyOf):
        found: list[Condition] = []
        for item in expression.items:
            found += [c for c in conditions(item) if c not in found]
        return found
    return [expression]


def holds(condition: Condition, user_id: str, agents: Agents) -> bool:
    """Whether the agent meets one condition (as routing does: NOT negates)."""
    if condition.agent_ids is not None:
        met = user_id in condition.agent_ids
    else:
        level = agents.level((condition.name or "", condition.value or ""), user_id)
        met = (
            level is not None
            and (condition.min_level is None or level >= condition.min_level)
            and (condition.max_level is None or level <= condition.max_level)
        )
    return met != condition.negated


def meets(
    expression: Expression, user_id: str, agents: Agents, relaxed: Condition | None = None
) -> bool:
    """Whether the agent meets the expression, with `relaxed` taken as met."""
    if isinstance(expression, AllOf):
        return all(meets(e, user_id, agents, relaxed) for e in expression.items)
    if isinstance(expression, AnyOf):
        return any(meets(e, user_id, agents, relaxed) for e in expression.items)
    return expression == relaxed or holds(expression, user_id, agents)


def meets_without(expression: Expression, user_id: str, agents: Agents, removed: Condition) -> bool:
    """Whether the agent meets the expression with `removed` taken out: out
    of an AND it no longer constrains; out of an OR it no longer offers a way
    in; a step left with no condition is met by every agent."""
    met = _without(expression, user_id, agents, removed)
    return True if met is None else met


def _without(
    expression: Expression, user_id: str, agents: Agents, removed: Condition
) -> bool | None:
    if isinstance(expression, AllOf | AnyOf):
        parts = [_without(e, user_id, agents, removed) for e in expression.items]
        kept = [p for p in parts if p is not None]
        if not kept:
            return None
        return all(kept) if isinstance(expression, AllOf) else any(kept)
    return None if expression == removed else holds(expression, user_id, agents)


# A user id no agent has: it stands for every agent holding nothing the
# expression names (the agents a holder search does not see).
NOBODY = ""


def outsiders_one_short(expression: Expression, agents: Agents) -> bool:
    """Whether an agent holding nothing the expression names misses it by
    one condition: then every such agent is a near miss."""
    leaves = conditions(expression)
    return not meets(expression, NOBODY, agents) and any(
        meets(expression, NOBODY, agents, leaf)
        for leaf in leaves
        if not holds(leaf, NOBODY, agents)
    )


def lacks(condition: Condition, user_id: str, agents: Agents) -> tuple[float, str]:
    """(how far, what the agent lacks) to meet `condition`: the gap in levels,
    or the whole condition when nothing of it is held."""
    if condition.agent_ids is not None:
        wanted = "one of the preferred agents"
        return 5.0, f"not {wanted}" if not condition.negated else f"is {wanted} (must not be)"
    key = (condition.name or "", condition.value or "")
    name = f"{key[0]}/{key[1]}"
    level = agents.level(key, user_id)
    if condition.negated:
        return 5.0, f"holds {name} at {level:g} (must not)"
    if level is None:
        return 5.0, f"no {name}"
    if condition.min_level is not None and level < condition.min_level:
        needs = f">= {condition.min_level:g}"
        if condition.max_level is not None:
            needs = f"{condition.min_level:g}..{condition.max_level:g}"
        return condition.min_level - level, f"{name} at {level:g}, needs {needs}"
    assert condition.max_level is not None  # held, not below: above the range
    return level - condition.max_level, (
        f"{name} at {level:g}, needs {condition.min_level or 1:g}..{condition.max_level:g}"
    )


@dataclass(frozen=True)
class ConditionCount:
    condition: str
    agents: int

    @property
    def data(self) -> dict[str, Any]:
        return {"condition": self.condition, "agents": self.agents}


@dataclass(frozen=True)
class NearMiss:
    username: str
    lacks: str
    gap: float

    @property
    def data(self) -> dict[str, Any]:
        return {"username": self.username, "lacks": self.lacks}


@dataclass(frozen=True)
class PreferredAgent:
    user_id: str
    username: str | None  # None: no such user
    eligible: bool

    @property
    def data(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "username": self.username, "eligible": self.eligible}


@dataclass
class StepExplanation:
    """One routing step explained."""

    index: int
    status: str | None
    expiry: str | None
    expression: str
    eligible_now: int | None = None
    eligible_after: int | None = None
    conditions: list[ConditionCount] = field(default_factory=list)
    limiting_condition: str | None = None
    near_misses: list[NearMiss] = field(default_factory=list)
    preferred: list[PreferredAgent] | None = None
    note: str = ""  # why it could not be explained, or what was left out

    @property
    def data(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "status": self.status,
            "expiry": self.expiry,
            "expression": self.expression,
            "eligible_now": self.eligible_now,
            "eligible_after": self.eligible_after,
            "conditions": [c.data for c in self.conditions],
            "limiting_condition": self.limiting_condition,
            "near_misses": [m.data for m in self.near_misses],
            "preferred_agents": None
            if self.preferred is None
            else [p.data for p in self.preferred],
            "note": self.note,
        }


def explain_step(
    index: int,
    expression: Expression,
    now: Agents,
    after: Agents | None,
    near_misses: int,
    status: str | None = None,
    expiry: str | None = None,
    agent_names: dict[str, str] | None = None,
) -> StepExplanation:
    """The explanation of one step over the agents known `now` (and `after` a plan)."""
    step = StepExplanation(index, status, expiry, to_text(expression, agent_names=agent_names))
    users = sorted(now.usernames)
    eligible = {u for u in users if meets(expression, u, now)}
    step.eligible_now = len(eligible)
    if after is not None:
        step.eligible_after = sum(1 for u in sorted(after.usernames) if meets(expression, u, after))
    leaves = conditions(expression)
    for leaf in leaves:
        count = sum(1 for u in users if holds(leaf, u, now))
        step.conditions.append(ConditionCount(to_text(leaf, agent_names=agent_names), count))
    gains = {
        leaf: sum(1 for u in users if u not in eligible and meets_without(expression, u, now, leaf))
        for leaf in leaves
    }
    best = max(leaves, key=lambda leaf: gains[leaf], default=None)
    if best is not None and gains[best] > 0:
        step.limiting_condition = to_text(best, agent_names=agent_names)
    step.near_misses = near_misses_of(expression, now, near_misses)
    listed = [leaf for leaf in leaves if leaf.agent_ids is not None]
    if listed:
        ids = [i for leaf in listed for i in leaf.agent_ids or ()]
        step.preferred = [
            PreferredAgent(i, now.usernames.get(i), i in eligible) for i in dict.fromkeys(ids)
        ]
    if not now.everyone and any(leaf.negated for leaf in leaves):
        step.note = "counted over the agents holding something it names"
    return step


def near_misses_of(expression: Expression, agents: Agents, limit: int) -> list[NearMiss]:
    """The `limit` agents closest to meeting the expression who miss it by
    one condition (meeting that one alone would make them eligible), with
    what they lack. The step's own holders and preferred agents come first,
    so a step's near misses never depend on the contact's other steps;
    agents holding nothing it names join only when those do not fill
    `limit`, they are one short too, and every user is known."""
    leaves = conditions(expression)
    named = {(c.name or "", c.value or "") for c in leaves if c.agent_ids is None}
    candidates = {u for key in named for u in agents.levels.get(key, {})}
    candidates |= {i for c in leaves for i in c.agent_ids or () if i in agents.usernames}
    misses = _one_short(expression, agents, candidates, leaves)
    if len(misses) < limit and agents.everyone and outsiders_one_short(expression, agents):
        outsiders = set(agents.usernames) - candidates
        misses += _one_short(expression, agents, outsiders, leaves)
    misses.sort(key=lambda m: (m.gap, m.username))
    return misses[:limit]


def _one_short(
    expression: Expression, agents: Agents, users: set[str], leaves: list[Condition]
) -> list[NearMiss]:
    misses = []
    for user in sorted(users):
        if meets(expression, user, agents):
            continue
        enough = [
            lacks(leaf, user, agents)
            for leaf in leaves
            if not holds(leaf, user, agents) and meets(expression, user, agents, leaf)
        ]
        if enough:
            gap, what = min(enough)
            misses.append(NearMiss(agents.usernames[user], what, gap))
    return misses


def unexplained(
    index: int, text: str, why: str, status: str | None, expiry: str | None
) -> StepExplanation:
    """A step that cannot be explained exactly, saying why (never a guess)."""
    return StepExplanation(index, status, expiry, text, note=why)


@dataclass
class ContactExplanation:
    """Every step of one contact (or of one `--expression`), and what reading cost."""

    contact: str | None
    steps: list[StepExplanation]
    note: str = ""
    reads: dict[str, int] = field(default_factory=dict)  # operation -> calls
    plan: str = ""  # what the after-state is: the plan's scope, or why there is none

    @property
    def data(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "contact": self.contact,
            "note": self.note,
            "after": self.plan,
            "steps": [s.data for s in self.steps],
            "reads": dict(sorted(self.reads.items())),
        }

    def render(self, fmt: str) -> str:
        if fmt == "json":
            return json.dumps(self.data, indent=2)
        return _markdown(self) if fmt == "markdown" else _text(self)


def _counts(step: StepExplanation) -> str:
    after = "" if step.eligible_after is None else f" → {step.eligible_after} after the plan"
    return f"{step.eligible_now} eligible now{after}"


def _text(explained: ContactExplanation) -> str:
    lines = [f"Contact {explained.contact}" if explained.contact else "Expression"]
    if explained.note:
        lines.append(f"  {explained.note}")
    for step in explained.steps:
        state = ", ".join(x for x in (step.status, step.expiry and f"expiry {step.expiry}") if x)
        lines += ["", f"Step {step.index}{f' ({state})' if state else ''}: {step.expression}"]
        if step.eligible_now is None:
            lines.append(f"  not explained: {step.note}")
            continue
        lines.append(f"  {_counts(step)}")
        for count in step.conditions:
            lines.append(f"    {count.agents:5d}  {count.condition}")
        if step.limiting_condition:
            lines.append(f"  limiting condition: {step.limiting_condition}")
        if step.near_misses:
            lines.append("  near misses (one condition short):")
            lines += [f"    {m.username}: {m.lacks}" for m in step.near_misses]
        for agent in step.preferred or []:
            who = agent.username or f"{agent.user_id} (no such user)"
            lines.append(
                f"  preferred agent {who}: {'eligible' if agent.eligible else 'not eligible'}"
            )
        if step.note:
            lines.append(f"  note: {step.note}")
    if explained.plan:
        lines += ["", f"After the plan: {explained.plan}."]
    lines += ["", f"Reads: {_reads(explained.reads)}."]
    return "\n".join(lines)


def _markdown(explained: ContactExplanation) -> str:
    title = f"contact `{explained.contact}`" if explained.contact else "an expression"
    lines = [f"### connect-reconciler explain: {title}", ""]
    if explained.note:
        lines += [explained.note, ""]
    lines.append(
        "| step | status | expression | now | after | agents per condition "
        "| limiting condition | near misses | preferred agents |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for step in explained.steps:
        misses = "<br>".join(markdown_cell(f"{m.username}: {m.lacks}") for m in step.near_misses)
        counts = "<br>".join(markdown_cell(f"{c.agents}: {c.condition}") for c in step.conditions)
        preferred = "<br>".join(
            markdown_cell(
                f"{p.username or f'{p.user_id} (no such user)'}: "
                f"{'eligible' if p.eligible else 'not eligible'}"
            )
            for p in step.preferred or []
        )
        after = "" if step.eligible_after is None else str(step.eligible_after)
        now = markdown_cell(step.note) if step.eligible_now is None else str(step.eligible_now)
        state = ", ".join(x for x in (step.status, step.expiry and f"expiry {step.expiry}") if x)
        lines.append(
            f"| {step.index} | {markdown_cell(state)} | {markdown_cell(step.expression)} | {now} "
            f"| {after} | {counts} | {markdown_cell(step.limiting_condition or '')} | {misses} "
            f"| {preferred} |"
        )
    if explained.plan:
        lines += ["", f"After the plan: {markdown_cell(explained.plan)}."]
    lines += ["", f"Reads: {_reads(explained.reads)}."]
    return "\n".join(lines)


def _reads(reads: dict[str, int]) -> str:
    return ", ".join(f"{op} {n}" for op, n in sorted(reads.items())) or "none"


def referenced(expressions: Iterable[Expression]) -> set[Key]:
    """Every (attribute, value) the expressions name."""
    return {
        (c.name, c.value)
        for e in expressions
        for c in conditions(e)
        if c.name is not None and c.value is not None and c.agent_ids is None
    }
