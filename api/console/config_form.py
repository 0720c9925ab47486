"""The integration form of every type, built from the type's configuration schema
(`domain.integration.schemas`): one input per field, chosen by its kind, and the two ways
between a form and a configuration.

- a string: a text input (a select with choices; a text area for PEM, XML or JSON documents);
- a secret: write-only (a password input, a text area for keys): never filled from the stored
  configuration; on edit an empty one keeps the stored secret;
- a boolean: a checkbox; an integer: a number input (a non-number is passed on as written, so
  the schema reports it with every other problem, in one envelope);
- a list: a text area, one item a line (PEM certificates: one block each);
- a map with known keys (attribute and claim maps): one input per key.

Input names are the configuration keys (`attribute_map.email` for a map's key), so the schema's
problems (`config.<key>`) land next to their inputs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from domain.integration.fields import MAX_STRING, PEM_CERTIFICATE, ConfigField, ConfigSchema, Kind

_PEM_BLOCK = re.compile(r"-----BEGIN [A-Z0-9 ]+-----.*?-----END [A-Z0-9 ]+-----", re.DOTALL)
_WORDS = {
    "url": "URL", "urls": "URLs", "dn": "DN", "tls": "TLS", "pem": "PEM", "sp": "SP",
    "idp": "IdP", "id": "ID", "sasl": "SASL", "ca": "CA", "json": "JSON", "api": "API",
    "dcr": "DCR", "ms": "(ms)", "ssl": "SSL", "slo": "SLO", "sso": "SSO", "xml": "XML",
}  # fmt: skip


@dataclass(frozen=True)
class FormField:
    name: str  # the configuration key, the input's name
    label: str
    hint: str  # the schema's description
    widget: str  # text, password, secret_area, area, select, number, checkbox, lines, pems, map
    required: bool
    choices: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()  # a map's keys
    bounds: tuple[int, int] | None = None

    @property
    def secret(self) -> bool:
        return self.widget in ("password", "secret_area")


def label_of(name: str) -> str:
    words = [_WORDS.get(w, w) for w in name.split("_")]
    first = words[0]
    return " ".join([first[:1].upper() + first[1:], *words[1:]])


def _document(spec: ConfigField) -> bool:
    example = str(spec.example)
    return (
        spec.max_length > MAX_STRING
        or "-----BEGIN" in example
        or spec.name.endswith(("_json", "_xml"))
    )


def _widget(spec: ConfigField) -> str:  # noqa: PLR0911 - one per kind
    if spec.kind is Kind.BOOL:
        return "checkbox"
    if spec.kind is Kind.INT:
        return "number"
    if spec.kind is Kind.STRING_MAP:
        return "map"
    if spec.kind is Kind.STRING_LIST:
        first = spec.example[0] if spec.example else ""
        return "pems" if str(first).startswith(PEM_CERTIFICATE) else "lines"
    if spec.secret:
        return "secret_area" if _document(spec) else "password"
    if spec.choices:
        return "select"
    return "area" if _document(spec) else "text"


def form_fields(schema: ConfigSchema) -> list[FormField]:
    """The form's inputs, in the schema's order."""
    return [
        FormField(
            name=spec.name,
            label=label_of(spec.name),
            hint=spec.description,
            widget=_widget(spec),
            required=spec.required,
            choices=spec.choices,
            keys=spec.map_keys,
            bounds=spec.bounds,
        )
        for spec in schema.fields
    ]


def values_of(schema: ConfigSchema, config: Mapping[str, Any]) -> dict[str, str]:
    """A stored (or default) configuration as the form's values; secrets are left out."""
    values: dict[str, str] = {}
    for field in form_fields(schema):
        value = config.get(field.name)
        if field.secret or value is None:
            continue
        if field.widget == "checkbox":
            values[field.name] = "on" if value else ""
        elif field.widget in ("lines", "pems"):
            values[field.name] = "\n".join(str(v).strip() for v in value)
        elif field.widget == "map":
            for key in field.keys:
                if key in value:
                    values[f"{field.name}.{key}"] = str(value[key])
        else:
            values[field.name] = str(value)
    return values


def defaults_of(schema: ConfigSchema) -> dict[str, str]:
    """The values of a new form: the schema's defaults."""
    return values_of(schema, {f.name: f.default for f in schema.fields if f.default is not None})


def _number(text: str) -> int | str:
    stripped = text.strip()
    try:
        return int(stripped)
    except ValueError:
        return stripped  # the schema reports "must be an integer" with the other problems


def _read(field: FormField, form: Mapping[str, str]) -> Any:  # noqa: PLR0911 - one per widget
    """The field's value in the form; None when it was left empty."""
    if field.widget == "checkbox":
        return form.get(field.name) == "on"
    if field.widget == "map":
        given = {k: form.get(f"{field.name}.{k}", "").strip() for k in field.keys}
        return {k: v for k, v in given.items() if v} or None
    text = form.get(field.name, "").replace("\r\n", "\n")
    if not text.strip():
        return None
    if field.widget == "number":
        return _number(text)
    if field.widget == "lines":
        return [line.strip() for line in text.split("\n") if line.strip()]
    if field.widget == "pems":
        return [b.strip() + "\n" for b in _PEM_BLOCK.findall(text)] or [text.strip()]
    if field.widget in ("area", "secret_area"):
        return text.strip() + ("\n" if "-----BEGIN" in text else "")
    return text.strip()


def config_of(schema: ConfigSchema, form: Mapping[str, str], *, editing: bool) -> dict[str, Any]:
    """The configuration a form describes. New: the fields given (the schema adds defaults).
    Edit: the changes to merge: an emptied field is null (back to its default, or removed), an
    empty secret is left out (the stored one stays)."""
    config: dict[str, Any] = {}
    for field in form_fields(schema):
        value = _read(field, form)
        if value is None and (field.secret or not editing):
            continue
        config[field.name] = value
    return config


def field_of(error_field: str) -> str:
    """The input an envelope's field names: `config.server_url` -> `server_url`."""
    if error_field == "config":
        return "form"
    return error_field.removeprefix("config.")
