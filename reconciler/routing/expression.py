"""The routing expression language: a routing step's `Expression`, in text or structure.

Expressions come in the structured form of a contact's RoutingCriteria step
`Expression` (AttributeCondition, NotAttributeCondition, AndExpression,
OrExpression), so a step copied from a flow or from DescribeContact works as
is, or in a short text form:

    Language = Spanish >= 4 AND (Skill = Billing >= 3 OR Skill = Payments IN 4..5)

`NAME = VALUE` alone means the value is held at any level; `>= N` is the
service's NumberGreaterOrEqualTo; `IN A..B` is a Range (bounds inclusive);
`NOT` negates one condition. Names and values with characters the text form
uses (parentheses, `=`, quotes) can be quoted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.quoting import clip, excerpt

GREATER_OR_EQUAL = "NumberGreaterOrEqualTo"
# Routing steps nest a few levels; deeper input is refused, not recursed into.
MAX_NESTING = 32


class ExpressionError(ValueError):
    """A malformed expression; `column` is 1-based in the text form."""

    def __init__(self, message: str, column: int | None = None) -> None:
        super().__init__(message if column is None else f"column {column}: {message}")
        self.column = column


@dataclass(frozen=True)
class Condition:
    """An attribute value held (at a level), or one of some preferred agents."""

    name: str | None
    value: str | None
    min_level: float | None = None
    max_level: float | None = None
    agent_ids: tuple[str, ...] | None = None
    negated: bool = False


@dataclass(frozen=True)
class AllOf:
    items: tuple[Expression, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Expression, ...]


Expression = Condition | AllOf | AnyOf


# -- the text form ----------------------------------------------------------------

_TOKEN = re.compile(
    r"""(?P<space>\s+)|(?P<paren>[()])|(?P<ge>>=)|(?P<eq>=)|(?P<range>\d+(?:\.\d+)?\.\.\d+(?:\.\d+)?)"""
    r"""|(?P<quoted>"[^"]*"|'[^']*')|(?P<word>[^\s()=<>"']+)|(?P<bad>.)"""
)
_KEYWORDS = {"AND", "OR", "NOT", "IN"}


@dataclass(frozen=True)
class _Token:
    kind: str  # paren, ge, eq, range, quoted, word, AND, OR, NOT, IN, end
    text: str
    column: int


def _tokens(text: str) -> list[_Token]:
    tokens = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "bad"
        value = match.group()
        if kind == "space":
            continue
        if kind == "bad":
            raise ExpressionError(f"unexpected {excerpt(value)}", match.start() + 1)
        if kind == "word" and value in _KEYWORDS:
            kind = value
        tokens.append(_Token(kind, value, match.start() + 1))
    tokens.append(_Token("end", "", len(text) + 1))
    return tokens


class _TextParser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.index = 0
        self.depth = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def take(self, kind: str) -> _Token:
        token = self.token
        if token.kind != kind:
            expected = {"eq": "'='", "paren": "')'", "end": "the end"}.get(kind, kind)
            found = excerpt(token.text) if token.text else "the end"
            raise ExpressionError(f"expected {expected}, found {found}", token.column)
        self.index += 1
        return token

    def parse(self) -> Expression:
        expression = self.any_of()
        self.take("end")
        return expression

    def any_of(self) -> Expression:
        items = [self.all_of()]
        while self.token.kind == "OR":
            self.index += 1
            items.append(self.all_of())
        return items[0] if len(items) == 1 else AnyOf(tuple(items))

    def all_of(self) -> Expression:
        items = [self.unary()]
        while self.token.kind == "AND":
            self.index += 1
            items.append(self.unary())
        return items[0] if len(items) == 1 else AllOf(tuple(items))

    def unary(self) -> Expression:
        token = self.token
        if token.kind == "NOT":
            self.index += 1
            if self.token.kind == "NOT":
                raise ExpressionError("NOT applies to a single condition", self.token.column)
            inner = self.unary()
            if not isinstance(inner, Condition) or inner.negated:  # also NOT (NOT x)
                raise ExpressionError("NOT applies to a single condition", token.column)
            return Condition(
                inner.name, inner.value, inner.min_level, inner.max_level, negated=True
            )
        if token.kind == "paren" and token.text == "(":
            if self.depth >= MAX_NESTING:
                raise ExpressionError(
                    f"parentheses nest more than {MAX_NESTING} deep", token.column
                )
            self.index += 1
            self.depth += 1
            inner = self.any_of()
            if self.token.text != ")":
                self.take("paren")
            self.index += 1
            self.depth -= 1
            return inner
        return self.condition()

    def phrase(self, what: str) -> str:
        token = self.token
        if token.kind == "quoted":
            self.index += 1
            return token.text[1:-1]
        words = []
        while self.token.kind == "word":
            words.append(self.take("word").text)
        if not words:
            found = excerpt(token.text) if token.text else "the end"
            raise ExpressionError(f"expected {what}, found {found}", token.column)
        return " ".join(words)

    def condition(self) -> Condition:
        name = self.phrase("an attribute name")
        self.take("eq")
        value = self.phrase("an attribute value")
        if self.token.kind == "ge":
            self.index += 1
            return Condition(name, value, min_level=self.level())
        if self.token.kind == "IN":
            self.index += 1
            token = self.take("range")
            low, high = (float(part) for part in token.text.split(".."))
            _check_range(low, high, token.column)
            return Condition(name, value, min_level=low, max_level=high)
        return Condition(name, value)

    def level(self) -> float:
        token = self.token
        try:
            level = float(token.text)
        except ValueError:
            raise ExpressionError(
                f"expected a level 1 to 5, found {excerpt(token.text or 'the end')}", token.column
            ) from None
        self.index += 1
        _check_range(level, level, token.column)
        return level


def _check_range(low: float, high: float, column: int | None = None) -> None:
    if not (1 <= low <= high <= 5):
        raise ExpressionError(
            f"levels are 1 to 5 and a range goes low..high, got {low:g}..{high:g}", column
        )


def parse_text(text: str) -> Expression:
    """Parse the short text form; ExpressionError carries the column."""
    return _TextParser(text).parse()


def to_text(
    expression: Expression, nested: bool = False, agent_names: Mapping[str, str] | None = None
) -> str:
    """The text form (agent conditions render for display only, with the
    agents' usernames from `agent_names` where known)."""
    if isinstance(expression, AllOf | AnyOf):
        joiner = " AND " if isinstance(expression, AllOf) else " OR "
        text = joiner.join(to_text(e, True, agent_names) for e in expression.items)
        return f"({text})" if nested else text
    if expression.agent_ids is not None:
        names = [(agent_names or {}).get(agent, agent) for agent in expression.agent_ids]
        text = f"agent is one of [{', '.join(names)}]"
    else:
        text = f"{_quoted(expression.name or '')} = {_quoted(expression.value or '')}"
        if expression.max_level is not None:
            text += f" IN {expression.min_level:g}..{expression.max_level:g}"
        elif expression.min_level is not None:
            text += f" >= {expression.min_level:g}"
    return f"NOT {text}" if expression.negated else text


def _quoted(text: str) -> str:
    # Service names never contain '"' (limits.name_problem), so double quotes
    # can wrap anything that would not read back as one plain phrase.
    words = text.split(" ")
    plain = all(re.fullmatch(r"[^\s()=<>\"']+", w) and w not in _KEYWORDS for w in words)
    if plain and not re.fullmatch(r"\d+(\.\d+)?\.\.\d+(\.\d+)?", text):
        return text
    return f'"{text}"'


# -- the structured form (a routing step's Expression) ----------------------------


def parse_structured(data: Any, where: str = "expression", depth: int = 0) -> Expression:
    """Parse an API `Expression` (or a whole step holding one)."""
    if not isinstance(data, dict):
        raise ExpressionError(f"{where}: expected a mapping, got {excerpt(data)}")
    if depth >= MAX_NESTING:
        raise ExpressionError(f"{where}: expressions nest more than {MAX_NESTING} deep")
    if "Expression" in data and set(data) <= {"Expression", "Expiry", "Status"}:
        return parse_structured(data["Expression"], f"{where}.Expression", depth + 1)
    kinds = [
        k
        for k in ("AttributeCondition", "NotAttributeCondition", "AndExpression", "OrExpression")
        if k in data
    ]
    unknown = set(data) - set(kinds)
    if len(kinds) != 1 or unknown:
        named = excerpt(", ".join(sorted(map(str, unknown))))
        raise ExpressionError(
            f"{where}: give exactly one of AttributeCondition, NotAttributeCondition, "
            f"AndExpression, OrExpression{f' (unknown: {named})' if unknown else ''}"
        )
    kind = kinds[0]
    if kind in ("AndExpression", "OrExpression"):
        items = data[kind]
        if not isinstance(items, list) or not items:
            raise ExpressionError(f"{where}.{kind}: expected a non-empty list")
        parsed = tuple(
            parse_structured(item, f"{where}.{kind}[{i}]", depth + 1)
            for i, item in enumerate(items)
        )
        return AllOf(parsed) if kind == "AndExpression" else AnyOf(parsed)
    return _attribute_condition(
        data[kind], f"{where}.{kind}", negated=kind == "NotAttributeCondition"
    )


def as_mapping(data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ExpressionError(f"{where}: expected a mapping, got {excerpt(data)}")
    return data


def _number(data: Any, where: str) -> float:
    # bool is an int to Python, not a number to the API.
    if isinstance(data, bool) or not isinstance(data, int | float):
        raise ExpressionError(f"{where}: expected a level 1 to 5, got {excerpt(data)}")
    return float(data)


def _attribute_condition(data: Any, where: str, negated: bool) -> Condition:
    data = as_mapping(data, where)
    known = {"Name", "Value", "ProficiencyLevel", "Range", "MatchCriteria", "ComparisonOperator"}
    if set(data) - known:
        unknown = sorted(set(data) - known, key=str)
        raise ExpressionError(f"{where}: unknown member(s) {clip(str(unknown))}")
    if "MatchCriteria" in data:
        criteria = as_mapping(data["MatchCriteria"], f"{where}.MatchCriteria")
        agents = as_mapping(criteria.get("AgentsCriteria"), f"{where}.MatchCriteria.AgentsCriteria")
        ids = agents.get("AgentIds") or []
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ExpressionError(
                f"{where}.MatchCriteria.AgentsCriteria.AgentIds: expected a list of user ids"
            )
        name, value = data.get("Name"), data.get("Value")
        return Condition(
            name if isinstance(name, str) else None,
            value if isinstance(value, str) else None,
            agent_ids=tuple(ids),
            negated=negated,
        )
    if not isinstance(data.get("Name"), str) or not isinstance(data.get("Value"), str):
        raise ExpressionError(f"{where}: Name and Value are required text")
    if "Range" in data:
        bounds = as_mapping(data["Range"], f"{where}.Range")
        if "MinProficiencyLevel" not in bounds or "MaxProficiencyLevel" not in bounds:
            raise ExpressionError(
                f"{where}.Range: MinProficiencyLevel and MaxProficiencyLevel are required"
            )
        low = _number(bounds["MinProficiencyLevel"], f"{where}.Range.MinProficiencyLevel")
        high = _number(bounds["MaxProficiencyLevel"], f"{where}.Range.MaxProficiencyLevel")
        _check_range(low, high)
        return Condition(data["Name"], data["Value"], low, high, negated=negated)
    if "ProficiencyLevel" in data:
        operator = data.get("ComparisonOperator", GREATER_OR_EQUAL)
        if operator != GREATER_OR_EQUAL:
            raise ExpressionError(
                f"{where}: ComparisonOperator {excerpt(operator)} is not {GREATER_OR_EQUAL}"
            )
        level = _number(data["ProficiencyLevel"], f"{where}.ProficiencyLevel")
        _check_range(level, level)
        return Condition(data["Name"], data["Value"], level, negated=negated)
    return Condition(data["Name"], data["Value"], negated=negated)


def parse_expression(value: str | dict[str, Any]) -> Expression:
    """Either form, as written in `routing_requirements[].expression`."""
    return parse_text(value) if isinstance(value, str) else parse_structured(value)


def references(expression: Expression) -> set[tuple[str, str]]:
    """The (attribute, value) pairs the expression names."""
    if isinstance(expression, AllOf | AnyOf):
        return set().union(*(references(e) for e in expression.items))
    if expression.name is None or expression.value is None:
        return set()
    return {(expression.name, expression.value)}
