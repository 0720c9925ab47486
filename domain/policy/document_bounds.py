"""Shape bounds of a JSON or YAML source (depth, values, list length, string length) checked
before the document is turned into policies, so a hostile document costs no more than its size.

JSON is decoded first (the decoder is fast and linear) and then walked without recursion; the
text is scanned for the place only when a bound is broken. YAML is checked on its parser's
events, before anything is composed: an alias counts as everything it stands for, so a "billion
laughs" document is refused at the alias that crosses the bound, after reading a few hundred bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from domain.policy.errors import PolicyLimitExceeded
from domain.policy.limits import PolicyLimits, exceeded, too_many_policies
from domain.policy.rule_model import Location
from domain.policy.source_positions import location_at

_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_JSON_NESTING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_JSON_ITEMS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]', re.DOTALL)


def too_deep(limits: PolicyLimits) -> str:
    return f"document nested deeper than {limits.document_depth} levels"


def too_many_items(limits: PolicyLimits) -> str:
    return f"a list or object of more than {limits.list_items:,} items"


def too_long_string(limits: PolicyLimits) -> str:
    return f"a string of more than {limits.string_length:,} characters"


def too_many_nodes(limits: PolicyLimits) -> str:
    return f"document of more than {limits.document_nodes:,} values"


def check_json_document(file: str, text: str, document: Any, limits: PolicyLimits) -> None:
    """Raise PolicyLimitExceeded, at the place in `text`, for the first bound `document` breaks."""
    nodes = 0
    stack: list[tuple[Any, int]] = [(document, 0)]
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > limits.document_nodes:
            raise exceeded("document_nodes", too_many_nodes(limits), Location(file, 1, 1))
        if isinstance(value, str):
            if len(value) > limits.string_length:
                raise locate_json_problem(file, text, "string_length", limits)
        elif isinstance(value, list | dict):
            if depth + 1 > limits.document_depth:
                raise locate_json_problem(file, text, "document_depth", limits)
            if len(value) > limits.list_items:
                raise locate_json_problem(file, text, "list_values", limits)
            if isinstance(value, dict):
                stack.extend((key, depth + 1) for key in value)
                stack.extend((item, depth + 1) for item in value.values())
            else:
                stack.extend((item, depth + 1) for item in value)


def locate_json_problem(
    file: str, text: str, limit: str, limits: PolicyLimits
) -> PolicyLimitExceeded:
    """The first place in JSON text that breaks `limit` (scanned only once a bound is broken, and
    only up to that place). Also used when the decoder itself gave up on the depth."""
    if limit == "string_length":
        for token in _JSON_STRING.finditer(text):
            if len(token.group()) - 2 > limits.string_length:
                where = location_at(file, text, token.start())
                return exceeded(limit, too_long_string(limits), where)
        return exceeded(limit, too_long_string(limits), Location(file, 1, 1))
    counting = limit == "list_values"
    open_frames: list[list[int]] = []  # [offset of the bracket, commas so far]
    for token in (_JSON_ITEMS if counting else _JSON_NESTING).finditer(text):
        char = token.group()
        if char in "[{":
            open_frames.append([token.start(), 0])
            if not counting and len(open_frames) > limits.document_depth:
                where = location_at(file, text, token.start())
                return exceeded(limit, too_deep(limits), where)
        elif char in "]}":
            if open_frames:
                open_frames.pop()
        elif char == "," and open_frames:
            frame = open_frames[-1]
            frame[1] += 1
            if frame[1] + 1 > limits.list_items:
                where = location_at(file, text, frame[0])
                return exceeded(limit, too_many_items(limits), where)
    message = too_many_items(limits) if counting else too_deep(limits)
    return exceeded(limit, message, Location(file, 1, 1))


@dataclass(slots=True)
class _Frame:
    anchor: str | None
    start_nodes: int
    event: Any
    """The event that opened it: its place is worked out only when a bound is broken there."""
    is_mapping: bool
    children: int = 0
    height: int = 1


@dataclass(slots=True)
class _YamlDocument:
    """Running totals of one YAML document; anchors are per document."""

    nodes: int = 0
    sizes: dict[str, int] = field(default_factory=dict)  # anchor -> values it stands for
    heights: dict[str, int] = field(default_factory=dict)  # anchor -> depth it adds
    open: list[_Frame] = field(default_factory=list)


def check_yaml_events(file: str, text: str, limits: PolicyLimits, loader_class: Any) -> None:
    """Walk the YAML events of every document in `text`; raise PolicyLimitExceeded at the first
    place that breaks a bound. Syntax errors are left to the loader that reads the text next."""
    loader = loader_class(text)
    document = _YamlDocument()
    documents = 0
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.DocumentStartEvent):
                document = _YamlDocument()
                documents += 1
                if documents > limits.source_policies:
                    raise too_many_policies(file, limits, _place(file, event))
            else:
                _yaml_event(file, event, document, limits)
    except yaml.MarkedYAMLError as error:
        # libyaml has its own, larger, bound on nesting; anything else is left to the loader.
        if "nesting depth" in str(error.problem) and error.problem_mark is not None:
            mark = error.problem_mark
            where = Location(file, mark.line + 1, mark.column + 1)
            raise exceeded("document_depth", too_deep(limits), where) from None
    except yaml.YAMLError:
        return
    finally:
        loader.dispose()


def _place(file: str, event: Any) -> Location:
    mark = getattr(event, "start_mark", None)
    return Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)


def _yaml_event(file: str, event: Any, document: _YamlDocument, limits: PolicyLimits) -> None:
    if isinstance(event, yaml.CollectionStartEvent):
        _count_child(file, document, 1, 1, event, limits)
        if len(document.open) + 1 > limits.document_depth:
            raise exceeded("document_depth", too_deep(limits), _place(file, event))
        is_mapping = isinstance(event, yaml.MappingStartEvent)
        document.open.append(_Frame(event.anchor, document.nodes, event, is_mapping))
    elif isinstance(event, yaml.CollectionEndEvent):
        _close_collection(document)
    elif isinstance(event, yaml.ScalarEvent):
        if len(event.value) > limits.string_length:
            raise exceeded("string_length", too_long_string(limits), _place(file, event))
        _count_child(file, document, 1, 0, event, limits)
        if event.anchor is not None:
            document.sizes[event.anchor] = 1
            document.heights[event.anchor] = 0
    elif isinstance(event, yaml.AliasEvent):
        _alias(file, document, str(event.anchor), event, limits)


def _close_collection(document: _YamlDocument) -> None:
    frame = document.open.pop()  # the parser ends only a collection it started, in this document
    if frame.anchor is not None:
        document.sizes[frame.anchor] = document.nodes - frame.start_nodes + 1
        document.heights[frame.anchor] = frame.height
    if document.open:
        parent = document.open[-1]
        parent.height = max(parent.height, frame.height + 1)


def _alias(
    file: str, document: _YamlDocument, anchor: str, event: Any, limits: PolicyLimits
) -> None:
    """An alias stands for all its anchor holds: counted, and nested, as if written out."""
    if any(frame.anchor == anchor for frame in document.open):
        raise exceeded(
            "document_nodes",
            f"alias *{anchor} refers to a collection holding it",
            _place(file, event),
        )
    height = document.heights.get(anchor, 0)
    if len(document.open) + height > limits.document_depth:
        where = _place(file, event)
        raise exceeded("document_depth", too_deep(limits) + " (aliases expanded)", where)
    _count_child(file, document, document.sizes.get(anchor, 1), height, event, limits)


def _count_child(
    file: str, document: _YamlDocument, size: int, height: int, event: Any, limits: PolicyLimits
) -> None:
    document.nodes += size
    if document.nodes > limits.document_nodes:
        what = too_many_nodes(limits) + " (aliases expanded)"
        raise exceeded("document_nodes", what, _place(file, event))
    if not document.open:
        return
    parent = document.open[-1]
    parent.children += 1
    if height >= parent.height:
        parent.height = height + 1
    items = parent.children // 2 if parent.is_mapping else parent.children
    if items > limits.list_items:
        raise exceeded("list_values", too_many_items(limits), _place(file, parent.event))
