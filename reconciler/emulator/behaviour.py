"""The answers the emulator gives where Connect's documentation is silent.

Each undocumented choice is a switch with a default, so the tool can be run
against every plausible service (`emulator serve --behaviour KEY=CHOICE`, or
a snapshot's `Behaviour` map). docs/emulator-fidelity.md lists each with its
source; `connect-reconciler doctor` probes a real instance for the answers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

# key -> (choices, default); `max-or-conditions` and `consistency-lag` take numbers.
CHOICES: dict[str, tuple[tuple[str, ...], str]] = {
    # Must a ListCondition's conditions hold for one proficiency, or may they
    # be met across the user's list? API_ListCondition says only "applied
    # together with an AND condition".
    "list-condition": (("one-proficiency", "any-proficiency"), "one-proficiency"),
    # Which bound(s) an EQUAL NumberCondition reads (API_NumberCondition names
    # MinValue and MaxValue without saying).
    "number-equal": (("either-bound", "min-value", "max-value", "both-bounds"), "either-bound"),
    # Whether StringCondition values match ignoring case.
    "string-case": (("insensitive", "sensitive"), "insensitive"),
    # UserSearchCriteria: "contains" queries need 2 to 25 characters, shorter
    # ones "throw invalid results": does a 1-character EXACT value match, match
    # nothing, or fail?
    "short-values": (("matched", "unmatched", "refused"), "matched"),
    # AssociateUserProficiencies of a proficiency the user holds.
    "associate-held": (("refused", "updates-level"), "refused"),
    # UpdatePredefinedAttribute removing a value some user holds.
    "remove-held-value": (("refused", "allowed"), "refused"),
    # SearchContacts' order when no Sort is sent.
    "contact-order": (("newest-first", "oldest-first"), "newest-first"),
}
NUMBERS = {
    # How many conditions one OrConditions list may hold (none documented).
    "max-or-conditions": "none",
    # Seconds (of service time) a write may take to reach each read path.
    "consistency-lag": "0",
    # Seeds the lag's random delays, so a failing run can be replayed.
    "seed": "0",
}
MAX_LAG = 3600.0
SHORT_VALUE = 2  # UserSearchCriteria: fewer characters "throw invalid results"


class BehaviourError(ValueError):
    """An unknown switch or choice; the message names the valid ones."""


@dataclass(frozen=True)
class Behaviour:
    """One answer to every undocumented question (the defaults are the
    strict readings the emulator has always taken)."""

    list_condition: str = "one-proficiency"
    number_equal: str = "either-bound"
    string_case: str = "insensitive"
    short_values: str = "matched"
    associate_held: str = "refused"
    remove_held_value: str = "refused"
    contact_order: str = "newest-first"
    max_or_conditions: int | None = None
    consistency_lag: float = 0.0
    seed: int = 0  # for the lag's random delays

    @classmethod
    def parse(cls, specs: list[str] | tuple[str, ...], base: Behaviour | None = None) -> Behaviour:
        """`KEY=CHOICE` items (as on the command line) over `base`."""
        values: dict[str, Any] = {}
        for spec in specs:
            key, sep, choice = spec.partition("=")
            if not sep:
                raise BehaviourError(f"--behaviour {spec!r:.80}: write KEY=CHOICE ({_keys()})")
            values[key.strip()] = choice.strip()
        return cls.from_map(values, base)

    @classmethod
    def from_map(cls, document: Any, base: Behaviour | None = None) -> Behaviour:
        """A snapshot's `Behaviour` object ({"list-condition": "any-proficiency", ...})."""
        if not isinstance(document, dict):
            raise BehaviourError("expected an object of KEY: CHOICE")
        changes: dict[str, Any] = {}
        for key, choice in document.items():
            changes[key.replace("-", "_")] = _value(str(key), choice)
        return replace(base or cls(), **changes)

    def to_map(self) -> dict[str, Any]:
        """The non-default answers, as a snapshot's `Behaviour` holds them."""
        default = Behaviour()
        found: dict[str, Any] = {}
        for item in fields(self):
            if item.name != "seed" and getattr(self, item.name) != getattr(default, item.name):
                found[item.name.replace("_", "-")] = getattr(self, item.name)
        return found


def _keys() -> str:
    return ", ".join([*CHOICES, *NUMBERS])


def _value(key: str, choice: Any) -> Any:
    if key in CHOICES:
        choices, _ = CHOICES[key]
        if choice not in choices:
            raise BehaviourError(
                f"behaviour {key}: {choice!r:.80} is not one of {', '.join(choices)}"
            )
        return choice
    if key == "max-or-conditions":
        if choice in (None, "none"):
            return None
        number = _number(key, choice)
        if not number.is_integer() or not 1 <= number <= 10_000:
            raise BehaviourError(f"behaviour {key}: a whole number from 1 to 10000, or none")
        return int(number)
    if key == "consistency-lag":
        number = _number(key, choice)
        if not 0 <= number <= MAX_LAG:
            raise BehaviourError(f"behaviour {key}: seconds from 0 to {MAX_LAG:g}")
        return number
    if key == "seed":
        if isinstance(choice, bool) or not str(choice).lstrip("-").isdigit():
            raise BehaviourError("behaviour seed: an integer")
        return int(choice)
    raise BehaviourError(f"unknown behaviour {key!r:.80}; known: {_keys()}")


def _number(key: str, choice: Any) -> float:
    if isinstance(choice, bool):
        raise BehaviourError(f"behaviour {key}: expected a number, got {choice!r}")
    try:
        number = float(choice)
    except (TypeError, ValueError):
        raise BehaviourError(f"behaviour {key}: expected a number, got {choice!r:.80}") from None
    if not math.isfinite(number):
        raise BehaviourError(f"behaviour {key}: expected a finite number")
    return number
