"""The live-state reader through the emulator: the search read finds exactly
what the list read finds (small instance, the demo, random instances), and
`auto` takes the read estimated cheaper."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.connect.pacer import QuotaPacer
from reconciler.connect.read_choice import ReadChoice, Verification
from reconciler.connect.reader import LiveStateReader, ReadScope, SearchMisread
from reconciler.emulator import FaultPlan, backend_from_snapshot, load_snapshot
from reconciler.manifest import load_manifest
from reconciler.plan.planner import make_plan
from reconciler.service.quotas import Quota
from tests.conftest import INSTANCE_ARN, INSTANCE_ID, ROOT

FAST = {op: Quota(10_000.0, 100) for op in ("SearchUsers", "ListUserProficiencies", "ListUsers")}


def reader(client, strategy: str, quotas: dict[str, Quota] | None = None) -> LiveStateReader:
    return LiveStateReader(QuotaPacer(client, quotas or FAST), INSTANCE_ID, strategy=strategy)


def read_both(client, scope: ReadScope):
    return reader(client, "list").read(scope), reader(client, "search").read(scope)


def test_search_read_equals_list_read(connect) -> None:
    _, client = connect
    for scope in (ReadScope({"jane", "joe"}), ReadScope(set(), all_users=True)):
        listed, searched = read_both(client, scope)
        assert searched.state == listed.state
        assert searched.managed == listed.managed
        # every user of the small instance is checked by list (fewer than 32)
        assert (listed.read, searched.read) == (
            ReadChoice("list", "list"),
            ReadChoice("search", "search", verification=Verification(sampled=3)),
        )
    # jane holds Language/Spanish 4 and Skill/Billing 3: levels from the bits
    assert searched.state.users["jane"].proficiencies == {
        ("Language", "Spanish"): 4.0,
        ("Skill", "Billing"): 3.0,
    }


def test_search_read_keeps_only_managed_users(connect) -> None:
    _, client = connect
    searched = reader(client, "search").read(ReadScope({"jane"}))
    assert set(searched.state.users) == {"jane"}


def test_search_read_narrowed_to_attributes_searches_only_their_values(connect) -> None:
    emulator, client = connect
    searched = reader(client, "search").read(ReadScope({"jane"}, only_attributes={"Skill"}))
    assert searched.state.users["jane"].proficiencies == {("Skill", "Billing"): 3.0}
    # Skill has 2 values: 3 queries each, one page each
    assert emulator.stats.calls("SearchUsers") == 6


def test_a_failed_listing_stops_the_search_and_fails_the_read(connect) -> None:
    # The search of a declared-users plan runs while users are listed; when
    # the listing fails, queries not yet started never are (running ones
    # finish). Two search workers and SearchUsers paced at 5/s: the 18
    # queries would take over 3 s, the listing fails in its first call.
    emulator, client = connect
    emulator.set_faults(FaultPlan(deny_operations=("ListUsers",)))
    slow = QuotaPacer(client, {**FAST, "SearchUsers": Quota(5.0, 1)})
    with pytest.raises(ClientError) as raised:
        LiveStateReader(slow, INSTANCE_ID, strategy="search", workers=2).read(
            ReadScope({"jane", "joe"})
        )
    assert raised.value.response["Error"]["Code"] == "AccessDeniedException"
    assert emulator.stats.calls("SearchUsers") < 18


def test_auto_reads_a_small_instance_by_list(connect) -> None:
    _, client = connect
    live = reader(client, "auto").read(ReadScope({"jane", "joe"}))
    # 2 users to list; search needs 3 x 6 values queries at least
    assert live.read == ReadChoice("list", "auto", 2 / 10_000)


def many_users_snapshot(users: int) -> dict:
    return {
        "Instance": {"Id": INSTANCE_ID, "Arn": INSTANCE_ARN},
        "PredefinedAttributes": [{"Name": "Tier", "Values": {"StringList": ["Gold", "Silver"]}}],
        "Users": [
            {
                "User": {"Id": f"id-{n}", "Username": f"agent{n}"},
                "Proficiencies": [
                    {"AttributeName": "Tier", "AttributeValue": "Gold", "Level": n % 5 + 1}
                ],
            }
            for n in range(users)
        ],
    }


def test_auto_searches_when_the_estimate_is_cheaper(connect) -> None:
    emulator, client = connect
    emulator.reset(backend_from_snapshot(many_users_snapshot(40)))
    scope = ReadScope(set(), all_users=True)
    live = reader(client, "auto").read(scope)
    # 40 users to list; 1 attribute to count + 3 x 2 values, one page each
    assert live.read == ReadChoice(
        "search", "auto", 40 / 10_000, 7 / 10_000, verification=Verification(sampled=32)
    )
    assert live.state == reader(client, "list").read(scope).state
    # --user narrowing always lists: a few users cost a few calls
    narrowed = reader(client, "auto").read(ReadScope(set(), all_users=True, only_users={"agent1"}))
    assert narrowed.read.strategy == "list"


def test_auto_weighs_the_quotas_in_force(connect) -> None:
    emulator, client = connect
    emulator.reset(backend_from_snapshot(many_users_snapshot(40)))
    slow_search = {**FAST, "SearchUsers": Quota(100.0, 100)}
    live = reader(client, "auto", slow_search).read(ReadScope(set(), all_users=True))
    # at 100/s its floor of 6 queries (0.06 s) already loses to listing 40 users
    assert live.read == ReadChoice("list", "auto", 40 / 10_000)


def test_values_equal_but_for_case_are_always_listed(connect) -> None:
    emulator, client = connect
    snapshot = many_users_snapshot(3)
    snapshot["PredefinedAttributes"][0]["Values"]["StringList"].append("GOLD")
    emulator.reset(backend_from_snapshot(snapshot))
    live = reader(client, "search").read(ReadScope(set(), all_users=True))
    assert live.read == ReadChoice("list", "search", note="values equal but for case")
    assert live.read.describe() == (
        "proficiencies read by ListUserProficiencies (--read search: values equal but for case)"
    )


def test_unknown_strategy_is_refused(connect) -> None:
    _, client = connect
    with pytest.raises(ValueError, match="not one of auto, search, list"):
        reader(client, "guess")


def test_search_plan_equals_list_plan_on_the_demo(emulator_server, connect_session_client) -> None:
    manifest = load_manifest(ROOT / "config")
    plans = {}
    for strategy in ("list", "search"):
        emulator_server.reset(load_snapshot(ROOT / "examples" / "demo-snapshot.json"))
        demo_reader = LiveStateReader(
            QuotaPacer(connect_session_client, FAST),
            manifest.instance.instance_id,
            strategy=strategy,
        )
        plans[strategy] = make_plan(manifest, demo_reader)
    listed, searched = plans["list"].to_data(True), plans["search"].to_data(True)
    assert (listed.pop("read")["strategy"], searched.pop("read")["strategy"]) == ("list", "search")
    assert listed["changes"], "the demo plan should have changes to compare"
    assert searched == listed


# -- random instances ------------------------------------------------------------

NAMES = st.text(alphabet="abAB -", min_size=1, max_size=6).map(str.strip).filter(bool)


@st.composite
def instances(draw) -> tuple[dict, set[str]]:
    """A snapshot with random attributes, values, users and levels, and a
    random set of declared users (some of whom may not exist)."""
    attributes = draw(
        st.dictionaries(NAMES, st.sets(NAMES, min_size=1, max_size=4), min_size=1, max_size=4)
    )
    folded: dict[str, str] = {}
    for name in attributes:
        folded.setdefault(name.casefold(), name)
    attributes = {name: attributes[name] for name in folded.values()}
    keys = sorted((a, v) for a, values in attributes.items() for v in values)
    users = draw(
        st.lists(
            st.dictionaries(st.sampled_from(keys), st.integers(1, 5), max_size=min(len(keys), 10)),
            max_size=12,
        )
    )
    snapshot = {
        "Instance": {"Id": INSTANCE_ID, "Arn": INSTANCE_ARN},
        "PredefinedAttributes": [
            {"Name": name, "Values": {"StringList": sorted(values)}}
            for name, values in attributes.items()
        ],
        "Users": [
            {
                "User": {"Id": f"id-{n}", "Username": f"user{n}"},
                "Proficiencies": [
                    {"AttributeName": a, "AttributeValue": v, "Level": float(level)}
                    for (a, v), level in held.items()
                ],
            }
            for n, held in enumerate(users)
        ],
    }
    declared = draw(st.sets(st.sampled_from([f"user{n}" for n in range(14)])))
    return snapshot, declared


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(instance=instances(), all_users=st.booleans())
def test_search_read_equals_list_read_on_random_instances(
    emulator_server, connect_session_client, instance, all_users
) -> None:
    snapshot, declared = instance
    emulator_server.reset(backend_from_snapshot(snapshot))
    listed, searched = read_both(connect_session_client, ReadScope(declared, all_users=all_users))
    assert searched.state == listed.state
    assert searched.missing_users == listed.missing_users


def two_proficiency_snapshot(users: int) -> dict:
    """Users holding Tier/Gold and Skill/Billing at different levels: where a
    ListCondition met across the list gives other answers than per proficiency."""
    snapshot = many_users_snapshot(users)
    snapshot["PredefinedAttributes"].append(
        {"Name": "Skill", "Values": {"StringList": ["Billing"]}}
    )
    for n, user in enumerate(snapshot["Users"]):
        user["Proficiencies"].append(
            {"AttributeName": "Skill", "AttributeValue": "Billing", "Level": (n + 2) % 5 + 1}
        )
    return snapshot


def test_a_search_that_matches_across_the_list_is_caught(connect) -> None:
    emulator, client = connect
    snapshot = two_proficiency_snapshot(40)
    emulator.reset(backend_from_snapshot(snapshot))
    scope = ReadScope(set(), all_users=True)
    expected = reader(client, "list").read(scope).state
    emulator.reset(backend_from_snapshot(snapshot, behaviour=("list-condition=any-proficiency",)))
    # auto would search (cheaper): the sample disagrees, it reads by list instead
    live = reader(client, "auto").read(scope)
    assert live.state == expected
    assert live.read.strategy == "list" and live.read.verification is not None
    assert live.read.verification.fell_back_to == "list"
    assert live.read.verification.disagreed > 0
    assert "search disagreed" in live.read.describe()
    # --read search refuses, naming users and what differs
    with pytest.raises(SearchMisread, match=r"agent\d+: (Skill/Billing|Tier/Gold) listed at \d"):
        reader(client, "search").read(scope)
