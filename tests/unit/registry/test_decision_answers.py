"""The decision route's answers: the part after the decision id is encoded once per decision
and policy version, and the bytes are exactly what `DecisionResult` and `DecisionBatchResult`
encode."""

from __future__ import annotations

import json
from uuid import uuid4

import msgspec

from api.http.policy_dto import DecisionAnswers, DecisionBatchResult, DecisionResult
from commands.decisions import ActivePolicy, DecisionOutcome
from domain.policy.json_values import canonical_text
from domain.policy.reference_evaluator import Decision

HASH = "cdd01ef066bc6cf2"
POLICY = ActivePolicy(uuid4(), 'odd "key" \\ é', 4, "acgs.policies.k", "", system_wide=False)
ALLOWED = Decision(allow=True, deny=frozenset(), obligations=frozenset())
DENIED = Decision(
    allow=False,
    deny=frozenset({"b reason", 'a "quoted" reason'}),
    obligations=frozenset({canonical_text({"log": ["x", 1.5]}), canonical_text({"mfa": True})}),
)


def _outcome(decision: Decision, policy: ActivePolicy = POLICY) -> DecisionOutcome:
    return DecisionOutcome(uuid4(), policy, decision)


def test_one_answer_is_the_result_encoded() -> None:
    answers = DecisionAnswers(HASH)
    for decision in (ALLOWED, DENIED, ALLOWED, DENIED):
        outcome = _outcome(decision)
        body = answers.one(outcome)
        assert body == msgspec.json.encode(DecisionResult.of(outcome, HASH))
        assert json.loads(body)["decision_id"] == str(outcome.decision_id)


def test_a_batch_answer_is_the_batch_encoded_in_order() -> None:
    answers = DecisionAnswers(HASH)
    newer = ActivePolicy(
        POLICY.policy_id, POLICY.policy_key, 5, POLICY.package, "", system_wide=False
    )
    outcomes = [_outcome(ALLOWED), _outcome(DENIED), _outcome(ALLOWED, newer), _outcome(DENIED)]
    body = answers.batch(outcomes)
    results = [DecisionResult.of(o, HASH) for o in outcomes]
    assert body == msgspec.json.encode(
        DecisionBatchResult(results=results, constitutional_hash=HASH)
    )
    assert [r["policy_version"] for r in json.loads(body)["results"]] == [4, 4, 5, 4]
