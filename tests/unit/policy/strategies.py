"""Hypothesis strategies: random rule-model policies and requests over a shared vocabulary, so
that comparisons hit as often as they miss (type twins such as 1, 1.0, "1" and true included)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.policy.rule_model import (
    AllOf,
    AnyOf,
    Combining,
    Comparison,
    Condition,
    Effect,
    Not,
    Obligation,
    Operator,
    Policy,
    Rule,
)

PATHS = ["user.role", "user.level", "user.tags", "action", "resource.owner", "context.ip"]
PATTERNS = ["^a", "b$", "a.c", "^[0-9]+$", "x|y", "", "(?i)AB"]
SCALARS = st.sampled_from(
    [0, 1, 1.0, 2, 2.5, -1, "1", "a", "b", "ab", "abc", "x", "", True, False, None]
)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.sampled_from(["k", "j"]), SCALARS, max_size=2),
)
VALUED_OPERATORS = [op for op in Operator if op not in (Operator.EXISTS, Operator.NOT_EXISTS)]


@st.composite
def comparisons(draw: st.DrawFn) -> Comparison:
    op = draw(st.sampled_from(list(Operator)))
    field = draw(st.sampled_from(PATHS))
    if op in (Operator.EXISTS, Operator.NOT_EXISTS):
        return Comparison(field, op)
    if op is Operator.MATCHES:
        return Comparison(field, op, draw(st.sampled_from(PATTERNS)))
    if draw(st.booleans()) and op is not Operator.MATCHES:
        return Comparison(field, op, value_field=draw(st.sampled_from(PATHS)))
    if op in (Operator.IN, Operator.NOT_IN):
        return Comparison(field, op, draw(st.one_of(st.lists(SCALARS, max_size=4), SCALARS)))
    return Comparison(field, op, draw(VALUES))


conditions: st.SearchStrategy[Condition] = st.recursive(
    comparisons(),
    lambda inner: st.one_of(
        st.builds(lambda members: AllOf(tuple(members)), st.lists(inner, max_size=3)),
        st.builds(lambda members: AnyOf(tuple(members)), st.lists(inner, max_size=3)),
        st.builds(Not, inner),
    ),
    max_leaves=6,
)

obligations = st.lists(
    st.one_of(
        st.just(Obligation.of({"type": "audit"})),
        st.builds(
            lambda target: Obligation.of({"type": "notify", "target": target}),
            st.sampled_from(["dpo@acme.com", "sec@acme.com"]),
        ),
        st.just(Obligation.of({"type": "log", "level": 1.0})),
    ),
    max_size=2,
)


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    count = draw(st.integers(min_value=0, max_value=6))
    rules = tuple(
        Rule(
            id=f"r{index}",
            effect=draw(st.sampled_from(list(Effect))),
            when=draw(st.one_of(st.none(), conditions)),
            priority=draw(st.integers(min_value=-2, max_value=2)),
            reason=draw(st.one_of(st.none(), st.sampled_from(["no", "blocked", 'x "quoted"']))),
            obligations=draw(obligations),
        )
        for index in range(count)
    )
    return Policy(
        policy_id=draw(st.sampled_from(["p1", "9lives", "pii-access", "a.b"])),
        rules=rules,
        combining=draw(st.sampled_from(list(Combining))),
        default=draw(st.sampled_from(list(Effect))),
    )


def _nest(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    request: dict[str, Any] = {}
    for path, value in pairs:
        node = request
        *parents, last = path.split(".")
        for segment in parents:
            child = node.get(segment)
            if not isinstance(child, dict):
                child = {}
                node[segment] = child
            node = child
        node[last] = value
    return request


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    pairs = draw(st.lists(st.tuples(st.sampled_from(PATHS), VALUES), max_size=6))
    request = _nest(pairs)
    hash_value = draw(
        st.sampled_from([DEFAULT_CONSTITUTIONAL_HASH] * 4 + ["0000000000000000", None])
    )
    if hash_value is not None:
        request["constitutional_hash"] = hash_value
    return request


# IAM-style documents: NotAction/NotResource and wildcards against requests whose action and
# resource.id are often missing or of the wrong type.
IAM_WILDCARDS = ["docs:Get*", "docs:Re?d", "docs:*", "*", "docs:List", "arn:docs:*", "*:private"]
IAM_NAMES = ["docs:GetObject", "docs:Get", "docs:Read", "docs:Reed", "docs:List", "arn:docs:1"]
MISTYPED = st.sampled_from([None, 5, True, ["docs:Get"], {"id": "x"}, ""])


@st.composite
def iam_statements(draw: st.DrawFn) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": draw(st.sampled_from(["Allow", "Deny"]))}
    action_key = draw(st.sampled_from(["Action", "NotAction", None]))
    resource_key = draw(st.sampled_from(["Resource", "NotResource", None]))
    for key in (action_key, resource_key):
        if key is not None:
            statement[key] = draw(st.lists(st.sampled_from(IAM_WILDCARDS), min_size=1, max_size=2))
    conditions: dict[str, Any] = {}
    if draw(st.booleans()):
        conditions[draw(st.sampled_from(["StringEquals", "StringNotEquals"]))] = {
            "user.dept": draw(st.sampled_from(["eng", ["eng", "ops"]]))
        }
    if draw(st.booleans()):
        conditions[draw(st.sampled_from(["StringLike", "StringNotLike"]))] = {
            "user.mail": draw(st.sampled_from(["*@acme.com", "a?c*"]))
        }
    if draw(st.booleans()):
        operator = draw(st.sampled_from(["NumericLessThan", "NumericNotEquals", "NumericEquals"]))
        conditions[operator] = {"user.risk": draw(st.sampled_from(["3", 2.5]))}
    if draw(st.booleans()):
        conditions[draw(st.sampled_from(["Bool", "Null"]))] = {
            "context.flag": draw(st.sampled_from(["true", "false", True]))
        }
    if conditions:
        statement["Condition"] = conditions
    return statement


@st.composite
def iam_documents(draw: st.DrawFn) -> dict[str, Any]:
    statements = draw(st.lists(iam_statements(), min_size=1, max_size=4))
    for number, statement in enumerate(statements):
        statement["Sid"] = f"S{number}"
    return {"Version": "2012-10-17", "Id": "iam-prop", "Statement": statements}


def _maybe(draw: st.DrawFn, value: st.SearchStrategy[Any]) -> Any:
    """A value, a value of the wrong type, or nothing (the key left out)."""
    return draw(st.one_of(value, MISTYPED, st.just(_LEFT_OUT)))


_LEFT_OUT = object()


@st.composite
def iam_requests(draw: st.DrawFn) -> dict[str, Any]:
    pairs = [
        ("action", _maybe(draw, st.sampled_from(IAM_NAMES))),
        ("resource.id", _maybe(draw, st.sampled_from(IAM_NAMES))),
        ("user.dept", _maybe(draw, st.sampled_from(["eng", "ops", "hr"]))),
        ("user.mail", _maybe(draw, st.sampled_from(["a@acme.com", "abc", "x@y.org"]))),
        ("user.risk", _maybe(draw, st.sampled_from([1, 2.5, 3, 4.0, "3"]))),
        ("context.flag", _maybe(draw, st.sampled_from([True, False, "true"]))),
    ]
    request = _nest([(path, value) for path, value in pairs if value is not _LEFT_OUT])
    if draw(st.booleans()) and "resource" in request and draw(st.booleans()):
        request["resource"] = draw(MISTYPED)  # a path through a non-object
    request["constitutional_hash"] = draw(
        st.sampled_from([DEFAULT_CONSTITUTIONAL_HASH] * 5 + ["0000000000000000"])
    )
    return request
