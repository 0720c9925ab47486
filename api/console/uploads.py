"""A console form that carries a file (multipart/form-data) or a long text: its text fields, each
within its own bound (a policy source is longer than a name), and its files. The short fields are
bounded as `read_form` bounds them; a NUL character in any text is refused, naming every field
that has one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from litestar import Request
from litestar.datastructures import UploadFile

from api.console.rendering import MAX_FORM_FIELD
from domain.errors import ValidationFailed


@dataclass(frozen=True)
class FormWithFiles:
    values: dict[str, str]
    files: dict[str, UploadFile] = field(default_factory=dict)  # only files actually chosen

    def get(self, name: str, default: str = "") -> str:
        return self.values.get(name, default)


async def read_form_with_files(
    request: Request[Any, Any, Any], long_fields: Mapping[str, int]
) -> FormWithFiles:
    """The form's text fields (those named in `long_fields` bounded by their own length, the
    others by MAX_FORM_FIELD) and its chosen files (a file input left empty sends a part with
    no name and no bytes: it is left out)."""
    form = await request.form()
    values: dict[str, str] = {}
    files: dict[str, UploadFile] = {}
    for key, value in form.items():
        if isinstance(value, str):
            values[key] = value[: long_fields.get(key, MAX_FORM_FIELD)]
        elif value.filename:
            files[key] = value
    bad = sorted(k for k, v in values.items() if "\x00" in v)
    if bad:
        raise ValidationFailed.listing(
            [{"field": k, "message": "must not contain a NUL character"} for k in bad]
        )
    return FormWithFiles(values, files)


async def text_of(upload: UploadFile, name: str, limit: int) -> str:
    """An uploaded file as UTF-8 text (at most `limit` bytes), the file closed; ValidationFailed
    naming `name`."""
    try:
        raw = await upload.read(limit + 1)
    finally:
        await upload.close()
    if len(raw) > limit:
        raise ValidationFailed.field(name, f"is larger than {limit} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationFailed.field(name, "must be UTF-8 text") from None
    if "\x00" in text:
        raise ValidationFailed.field(name, "must not contain the NUL character (U+0000)")
    return text
