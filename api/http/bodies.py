"""Request bodies: checked in full before a handler (and Litestar's decoder) sees them.

Every route whose handler takes a `data` body runs through `check_body` (the app's
`before_request` hook), so a route added later is covered without code of its own:

- a body of another media type than JSON is 415 `UNSUPPORTED_MEDIA_TYPE` (no Content-Type is
  read as JSON);
- the body must be JSON (no NaN or Infinity, no unpaired surrogate), nest at most
  `MAX_BODY_DEPTH` levels, repeat no key within an object, and hold no NUL character in any
  string or key; otherwise 422 `VALIDATION_ERROR` naming the body;
- a required body must be there (an optional one may be absent or `null`); an object body is
  checked against the route's body type field by field, and every problem is reported at once:
  unknown and read-only fields, missing required fields, values of the wrong type (types are
  strict: "5" is not a number; a number with a zero fraction, 5.0, is an integer). Values are
  never echoed (they may be secrets or hostile input); each problem is `{field, message,
  source}`.

Rules on values (slug syntax, email, quotas) stay in the domain, which reports them after this.
The JSON value decoded here is handed to Litestar as the request's JSON (its decoder gives the
same value), so a body is decoded once.
"""

from __future__ import annotations

import json
import re
import types
from functools import cache
from typing import Any, TypeVar, Union, get_args, get_origin

import msgspec
from litestar import Request
from litestar.utils.scope.state import ScopeState

from api.http.errors import QUOTED_INPUT, READ_ONLY_FIELDS, UnsupportedMediaType
from domain.errors import ValidationFailed

S = TypeVar("S", bound=msgspec.Struct)
MAX_BODY_DEPTH = 32
_JSON_MEDIA = re.compile(r"^application/(?:[\w.+-]+\+)?json$")
_BACKTICKED = re.compile(r"`[^`]*`")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")  # a field name shown back as given
_encode = msgspec.json.Encoder().encode


async def check_body(request: Request[Any, Any, Any]) -> None:
    """Litestar `before_request` hook; raises the refusal, or returns None to go on."""
    field = request.route_handler.parsed_fn_signature.parameters.get("data")
    if field is None:
        return
    body = await request.body()
    if not body.strip():
        if field.is_optional:
            return
        raise _invalid([_problem("body", "is required (a JSON object)")])
    if not is_json_media(request.headers.get("content-type")):
        raise UnsupportedMediaType(
            "the request body must be JSON (Content-Type: application/json)",
            {"supported": ["application/json"]},
        )
    value = decode(body)
    # Litestar reads the handler's `data` from the request's JSON: the value decoded here, the
    # same its decoder gives (a JSON value, no type), so the body is decoded once.
    ScopeState.from_scope(request.scope).json = value
    struct = _body_struct(field.annotation)
    if value is None and field.is_optional:
        return  # an optional body may be given as JSON null
    if struct is not None:
        problems = struct_problems(value, struct)
        if problems:
            raise _invalid(problems)


def is_json_media(media_type: str | None) -> bool:
    """Whether a body of this Content-Type is read (as JSON): none, or a JSON media type."""
    return media_type is None or bool(
        _JSON_MEDIA.fullmatch(media_type.partition(";")[0].strip().lower())
    )


def decode(body: bytes) -> Any:
    """The JSON value of a body, or 422 naming what is wrong with it (never its content)."""
    try:
        value = msgspec.json.decode(body)
    except RecursionError:
        raise _invalid([_too_deep()]) from None
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        reason = _BACKTICKED.sub("", str(exc)).partition(" - ")[0][:120]
        raise _invalid([_problem("body", f"is not valid JSON ({reason})")]) from None
    problems = _shape_problems(value, body)
    if problems:
        raise _invalid(problems)
    return value


def struct_problems(value: Any, struct: type[msgspec.Struct]) -> list[dict[str, str]]:
    """Every problem of a decoded body against a request type, in field order."""
    if not isinstance(value, dict):
        return [_problem("body", "must be a JSON object")]
    fields = _fields(struct)
    known = _known(struct)
    problems = [_unknown(key) for key in value if key not in known]
    if not problems and converted(value, struct) is not None:
        return []  # the common case, a valid body: one conversion rather than one per field
    for f in fields:
        if f.encode_name not in value:
            if f.required:
                problems.append(_problem(f.encode_name, "is required"))
            continue
        try:
            msgspec.convert(_integral(value[f.encode_name]), f.type, strict=True)
        except msgspec.ValidationError as exc:
            message = QUOTED_INPUT.sub("", str(exc).partition(" - ")[0]) or "invalid value"
            problems.append(_problem(f.encode_name, message))  # never the value itself
    return problems


def converted(value: Any, struct: type[S]) -> S | None:
    """A decoded body as the request type, converted strictly; None when it does not convert
    (a body `struct_problems` finds no problem in may still need the framework's conversion:
    5.0 for an integer). Unknown fields are refused only by a type that forbids them."""
    if not isinstance(value, dict):
        return None
    try:
        return msgspec.convert(value, struct, strict=True)
    except msgspec.ValidationError:
        return None


@cache
def _fields(struct: type[msgspec.Struct]) -> tuple[msgspec.structs.FieldInfo, ...]:
    """A request type's fields, resolved once (resolving its annotations costs ~0.1 ms)."""
    return msgspec.structs.fields(struct)


@cache
def _known(struct: type[msgspec.Struct]) -> frozenset[str]:
    return frozenset(f.encode_name for f in _fields(struct))


def _integral(value: Any) -> Any:
    """JSON has one number type: 5.0 is the integer 5 (as JSON Schema says), 5.5 is not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


def _shape_problems(value: Any, body: bytes) -> list[dict[str, str]]:
    """Depth beyond the limit, NUL in a string or key (PostgreSQL text cannot hold it), or a key
    repeated within an object (the decoder keeps the last one silently).

    Repeated keys are found by counting, in the same walk: outside strings, a colon of JSON text
    separates a key from its value, so the text's colons, less those inside its strings, are its
    object members; fewer members decoded means a key was repeated. A string's colons are those
    of its decoded value unless an escape (`\\u003a`) wrote one: a body with `\\u` is parsed
    again, keeping every member (rare: JSON encoders write non-ASCII as UTF-8).

    Most bodies are settled without the walk (`_plainly_well_shaped`)."""
    return [] if _plainly_well_shaped(value, body) else _walked_problems(value, body)


def _walked_problems(value: Any, body: bytes) -> list[dict[str, str]]:
    """`_shape_problems` by the walk."""
    members = 0  # object members decoded
    colons = 0  # colons inside decoded keys and strings
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > MAX_BODY_DEPTH:
                return [_too_deep()]
            members += len(item)
            for key, member in item.items():
                if "\x00" in key:
                    return [_nul()]
                colons += key.count(":")
                stack.append((member, depth + 1))
        elif isinstance(item, list):
            if depth > MAX_BODY_DEPTH:
                return [_too_deep()]
            stack.extend((member, depth + 1) for member in item)
        elif isinstance(item, str):
            if "\x00" in item:
                return [_nul()]
            colons += item.count(":")
    escaped = b"\\u" in body
    repeated = _has_duplicate_keys(body) if escaped else body.count(b":") - colons != members
    return [_problem("body", "repeats a key within an object")] if repeated else []


def _plainly_well_shaped(value: Any, body: bytes) -> bool:
    """True when the text alone shows what the walk of `_shape_problems` would find: nothing.

    Without `\\u`, a string can hold no NUL (JSON text holds no raw control character) and no
    colon written as an escape; with at most `MAX_BODY_DEPTH` brackets, nothing nests deeper.
    Then the decoded value, encoded again, has as many colons as the text unless a repeated
    key's member was dropped: each member has its colon, every string its own colons, and
    dropping a member takes its colon away."""
    return (
        b"\\u" not in body
        and body.count(b"{") + body.count(b"[") <= MAX_BODY_DEPTH
        and _encode(value).count(b":") == body.count(b":")
    )


def _has_duplicate_keys(body: bytes) -> bool:
    if b"{" not in body:
        return False
    duplicated = False

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal duplicated
        obj = dict(items)
        duplicated = duplicated or len(obj) != len(items)
        return obj

    json.loads(body, object_pairs_hook=pairs)
    return duplicated


def _body_struct(annotation: Any) -> type[msgspec.Struct] | None:
    """The request type of a body annotation, found once per annotation."""
    try:
        return _STRUCTS[annotation]
    except KeyError:
        found = _STRUCTS[annotation] = _struct_of(annotation)
        return found
    except TypeError:  # an annotation that cannot be a key (unhashable metadata)
        return _struct_of(annotation)


_STRUCTS: dict[Any, type[msgspec.Struct] | None] = {}  # a route's body annotation: fixed


def _struct_of(annotation: Any) -> type[msgspec.Struct] | None:
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        return annotation
    if get_origin(annotation) in (Union, types.UnionType):
        for member in get_args(annotation):
            found = _struct_of(member)
            if found is not None:
                return found
    return None


def _unknown(key: str) -> dict[str, str]:
    if key in READ_ONLY_FIELDS:
        return _problem(key, "is read-only")
    if _NAME.fullmatch(key):
        return _problem(key, "unknown field")
    return _problem("body", "has an unknown field (its name is not shown)")


def _nul() -> dict[str, str]:
    return _problem("body", "must not contain the NUL character (U+0000)")


def _too_deep() -> dict[str, str]:
    return _problem("body", f"nests deeper than {MAX_BODY_DEPTH} levels")


def _problem(field: str, message: str) -> dict[str, str]:
    return {"field": field[:100], "message": message[:300], "source": "body"}


def _invalid(problems: list[dict[str, str]]) -> ValidationFailed:
    summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
    return ValidationFailed(summary[:300], {"fields": problems})
