"""Amazon Connect's documented limits for routing attributes and proficiencies.

Shared by the manifest checks (so bad input fails before any API call) and the
emulator (so it rejects what the service rejects). Source:
https://docs.aws.amazon.com/connect/latest/adminguide/predefined-attributes.html
("up to 500 values per attribute", names and values "up to 100 characters",
pattern ^(?!(aws:|connect:))[\\p{L}\\p{Z}\\p{N}_.:/=+-@']+$, no duplicate names
"case-sensitivity doesn't allow duplicate names") and
https://docs.aws.amazon.com/connect/latest/APIReference/API_UserProficiency.html
(levels 1.0 to 5.0).
"""

from __future__ import annotations

import unicodedata

# Attribute names and values (PredefinedAttributeName and
# PredefinedAttributeStringValue), usernames (AgentUsername): the service
# model's lengths, which tests/service/test_limits.py holds these to.
MAX_NAME_LENGTH = 100
MAX_USERNAME_LENGTH = 100
# What settings.quotas may set a token bucket to (requests per second, burst).
MIN_QUOTA_RATE = 0.01
MAX_QUOTA_RATE = 100_000.0
MAX_QUOTA_BURST = 100_000
MAX_VALUES_PER_ATTRIBUTE = 500
MAX_PURPOSES = 10
MIN_LEVEL = 1
MAX_LEVEL = 5
# The largest pages the service model allows (MaxResults), which reads ask for.
SEARCH_USERS_PAGE = 500
SEARCH_ATTRIBUTES_PAGE = 100
# Account quotas, both adjustable: "Proficiencies per agent: 10" and
# "Predefined attributes per instance: 150" in
# https://docs.aws.amazon.com/connect/latest/adminguide/amazon-connect-service-limits.html#connect-quotas
DEFAULT_MAX_PROFICIENCIES_PER_USER = 10
DEFAULT_MAX_ATTRIBUTES_PER_INSTANCE = 150
RESERVED_PREFIXES = ("connect:", "aws:")
_PUNCTUATION = set("_.:/=+-@'")


# "System predefined attributes" (predefined-attributes.html): connect: names
# and values are Amazon Connect's and cannot be changed or deleted, except that
# "you can add 500 custom values to connect:Language". connect:Subtype cannot
# change. So connect:Language's custom values are the only connect: change.
CUSTOM_VALUES_ATTRIBUTE = "connect:Language"


def takes_custom_values(name: str) -> bool:
    """True for the one system attribute whose custom values may be managed."""
    return name.casefold() == CUSTOM_VALUES_ATTRIBUTE.casefold()


def is_reserved(name: str) -> bool:
    """True for names the service keeps for itself (`connect:Language`)."""
    return name.lower().startswith(RESERVED_PREFIXES)


def name_problem(text: str) -> str | None:
    """Why `text` cannot be an attribute name or value, or None if it can."""
    if not 1 <= len(text) <= MAX_NAME_LENGTH:
        return f"must be 1 to {MAX_NAME_LENGTH} characters long (it has {len(text)})"
    if is_reserved(text):
        return "names starting with 'connect:' or 'aws:' are reserved by Amazon Connect"
    for char in text:
        if not (
            char.isalpha()
            or char.isnumeric()
            or unicodedata.category(char).startswith("Z")
            or char in _PUNCTUATION
        ):
            return f"character {char!r} is not allowed (letters, digits, spaces and _.:/=+-@' are)"
    return None


# What searches may lean on (SearchUsers, SearchPredefinedAttributes). Each
# is the strict reading where the documentation is silent, and every one is a
# switch of the emulator (docs/emulator-fidelity.md) that `doctor` probes.
#
# No limit on the conditions of one OrConditions list is documented: the tool
# sends at most this many and halves the number when the service refuses a
# list of that size (InvalidParameterException).
MAX_OR_CONDITIONS = 20
# UserSearchCriteria: "contains" queries need "a minimum of 2 characters";
# shorter ones "throw invalid results". Shorter names and values are never
# searched for: what they would find is read another way, or refused.
# https://docs.aws.amazon.com/connect/latest/APIReference/API_UserSearchCriteria.html
MIN_SEARCHABLE_LENGTH = 2


def searchable(text: str) -> bool:
    """Whether a search for `text` rests on nothing the documentation leaves open."""
    return len(text) >= MIN_SEARCHABLE_LENGTH
