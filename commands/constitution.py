"""The constitutional-hash check every state-changing command runs first."""

from __future__ import annotations

from domain.errors import ConstitutionalHashMismatch, ConstitutionalHashRequired


def verify_constitutional_hash(supplied: str | None, expected: str) -> None:
    if supplied is None or supplied == "":
        msg = (
            "the constitutional hash is required on state-changing requests: the body field "
            "constitutional_hash or the header X-Constitutional-Hash"
        )
        details = {"body_field": "constitutional_hash", "header": "X-Constitutional-Hash"}
        raise ConstitutionalHashRequired(msg, details)
    if supplied != expected:
        msg = "constitutional_hash does not match this deployment's constitution"
        raise ConstitutionalHashMismatch(msg, {"supplied": supplied[:64]})
