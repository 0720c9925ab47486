"""What a decision log keeps of an input: its digest, and (when enabled) the masked input."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from domain.errors import ValidationFailed
from domain.registry.decision_log import MASK, input_digest, mask_fields, masked, new_decision_id


def test_the_digest_ignores_key_order_and_differs_with_any_value() -> None:
    assert input_digest({"a": 1, "b": [1, 2]}) == input_digest({"b": [1, 2], "a": 1})
    assert input_digest({"a": 1}) != input_digest({"a": 2})
    assert len(input_digest({})) == 64


def test_masking_replaces_the_values_at_the_paths_and_leaves_the_original_alone() -> None:
    document = {"user": {"ssn": "123", "name": "Ann"}, "card": "4111", "n": 1}
    copy = masked(document, ("user.ssn", "card", "absent.path", "n.deeper"))
    assert copy == {"user": {"ssn": MASK, "name": "Ann"}, "card": MASK, "n": 1}
    assert document["user"] == {"ssn": "123", "name": "Ann"}
    assert masked(document, ()) is document


def test_mask_fields_are_dotted_paths() -> None:
    assert mask_fields(["user.ssn", "user.ssn", "card"]) == ("user.ssn", "card")
    for bad in (["with space"], ["a..b"], [""], "user.ssn", [1], ["x"] * 101):
        with pytest.raises(ValidationFailed):
            mask_fields(bad)


def test_decision_ids_are_version_7_time_ordered_and_unique_across_threads_and_forks() -> None:
    first = [new_decision_id() for _ in range(5000)]
    assert {i.version for i in first} == {7}
    assert {i.variant for i in first} == {"specified in RFC 4122"}
    assert [i.int >> 80 for i in first] == sorted(i.int >> 80 for i in first)  # milliseconds
    with ThreadPoolExecutor(4) as pool:
        threads = list(pool.map(lambda _: [new_decision_id() for _ in range(2000)], range(4)))
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child draws its own random bits, not the parent's pool
        os.write(write, b"".join(new_decision_id().bytes for _ in range(500)))
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    with os.fdopen(read, "rb") as pipe:
        raw = pipe.read()
    forked = [raw[i : i + 16] for i in range(0, len(raw), 16)]
    after = [new_decision_id() for _ in range(500)]
    in_threads = [i for ids in threads for i in ids]
    random_bits = {i.int & (2**74 - 1) for i in (*first, *in_threads, *after)}
    random_bits |= {int.from_bytes(b) & (2**74 - 1) for b in forked}
    assert len(random_bits) == 5000 + 4 * 2000 + 500 + 500
