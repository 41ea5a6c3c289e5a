"""Explaining one step over known agents: counts per condition, the limiting
condition, near misses and what they lack, under every expression form."""

from __future__ import annotations

from reconciler.routing.explain import Agents, explain_step
from reconciler.routing.expression import parse_structured, parse_text

# a: Spanish 4, Billing 3; b: Spanish 2, Billing 5; c: Billing 4; d: Spanish 5, French 1
AGENTS = Agents(
    {"a": "ann", "b": "bob", "c": "cy", "d": "dee"},
    {
        ("Language", "Spanish"): {"a": 4.0, "b": 2.0, "d": 5.0},
        ("Skill", "Billing"): {"a": 3.0, "b": 5.0, "c": 4.0},
        ("Language", "French"): {"d": 1.0},
    },
    everyone=True,
)


def explained(text: str, agents: Agents = AGENTS, after: Agents | None = None):
    return explain_step(1, parse_text(text), agents, after, near_misses=10)


def test_an_and_of_conditions() -> None:
    step = explained("Language = Spanish >= 4 AND Skill = Billing >= 4")
    assert step.eligible_now == 0
    assert [(c.condition, c.agents) for c in step.conditions] == [
        ("Language = Spanish >= 4", 2),
        ("Skill = Billing >= 4", 2),
    ]
    # relaxing Spanish lets bob and cy in; relaxing Billing lets ann and dee in: a tie, first wins
    assert step.limiting_condition == "Language = Spanish >= 4"
    assert [(m.username, m.lacks) for m in step.near_misses] == [
        ("ann", "Skill/Billing at 3, needs >= 4"),
        ("bob", "Language/Spanish at 2, needs >= 4"),
        ("cy", "no Language/Spanish"),
        ("dee", "no Skill/Billing"),
    ]


def test_a_range_an_or_and_a_not() -> None:
    step = explained(
        "Language = Spanish IN 2..4 AND (Skill = Billing >= 5 OR NOT Language = French)"
    )
    assert step.eligible_now == 2  # ann (Spanish 4, no French) and bob
    # cy's OR holds (no French) and only Spanish is missing; dee fails three conditions
    assert [(m.username, m.lacks) for m in step.near_misses] == [("cy", "no Language/Spanish")]
    step = explained("Language = Spanish IN 2..4")
    assert [(m.username, m.lacks) for m in step.near_misses] == [
        ("dee", "Language/Spanish at 5, needs 2..4"),  # one level off: first
        ("cy", "no Language/Spanish"),
    ]
    step = explained("Skill = Billing >= 1 AND NOT Language = French")
    assert step.eligible_now == 3


def test_near_misses_are_capped_and_sorted_by_how_close() -> None:
    step = explain_step(1, parse_text("Language = Spanish >= 5"), AGENTS, None, near_misses=1)
    assert [m.username for m in step.near_misses] == ["ann"]  # at 4: one level short


def test_after_the_plan_counts_the_changed_levels() -> None:
    after = AGENTS.with_levels({"a": {("Language", "Spanish"): 4.0, ("Skill", "Billing"): 4.0}})
    step = explained("Language = Spanish >= 4 AND Skill = Billing >= 4", after=after)
    assert (step.eligible_now, step.eligible_after) == (0, 1)


def test_preferred_agents_say_who_exists_and_qualifies() -> None:
    structured = {
        "AndExpression": [
            {"AttributeCondition": {"Name": "connect:AgentId", "Value": "preferred",
                                    "MatchCriteria": {"AgentsCriteria": {"AgentIds": ["b", "zz"]}}}},
            {"AttributeCondition": {"Name": "Skill", "Value": "Billing", "ProficiencyLevel": 4}},
        ]
    }  # fmt: skip
    step = explain_step(
        1, parse_structured(structured), AGENTS, None, 10, agent_names=AGENTS.usernames
    )
    assert [(p.user_id, p.username, p.eligible) for p in step.preferred or []] == [
        ("b", "bob", True),
        ("zz", None, False),
    ]
    assert "agent is one of [bob, zz]" in step.expression
    assert [m.username for m in step.near_misses] == ["cy"]  # Billing 4, not preferred
    assert step.near_misses[0].lacks == "not one of the preferred agents"


def test_a_one_condition_steps_limiting_condition_is_that_condition() -> None:
    step = explained("Language = Spanish >= 1")
    # removing it leaves no condition: cy, who holds no Spanish, would be eligible
    assert step.eligible_now == 3 and step.limiting_condition == "Language = Spanish >= 1"
    nobody_holds = explained("Language = French >= 3")
    assert nobody_holds.eligible_now == 0
    assert nobody_holds.limiting_condition == "Language = French >= 3"
    assert [m.username for m in nobody_holds.near_misses] == ["dee", "ann", "bob", "cy"]


def test_removing_a_way_into_an_or_never_adds_agents() -> None:
    step = explained("Language = Spanish >= 5 OR Skill = Billing >= 5")
    assert step.eligible_now == 2 and step.limiting_condition is None
    nested = explained(
        "(Language = Spanish >= 5 AND Skill = Billing >= 4) OR Language = French >= 2"
    )
    # out of the AND, Spanish would let bob and cy in (Billing >= 4), Billing only dee
    assert nested.eligible_now == 0 and nested.limiting_condition == "Language = Spanish >= 5"


def test_near_misses_come_from_the_steps_own_holders() -> None:
    # what two steps of one contact read: holders of Spanish and of Billing, not everyone
    seen = Agents(AGENTS.usernames, AGENTS.levels, everyone=False)
    spanish = explain_step(1, parse_text("Language = Spanish >= 5"), seen, None, 10)
    # cy holds only Billing (another step's value): not a near miss of this step
    assert [m.username for m in spanish.near_misses] == ["ann", "bob"]
