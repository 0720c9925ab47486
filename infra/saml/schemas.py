"""python3-saml's XML schema validation with the schemas loaded once per thread.

`OneLogin_Saml2_XML.validate_xml` parses and compiles the SAML XSDs on every call (about 5 ms,
most of a response's validation). `install()` replaces it with the same check on a compiled
schema kept per thread (an lxml `XMLSchema` is not shared across threads). The result is the
same: the document when valid, `'unloaded_xml'` or `'invalid_xml'` otherwise.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from lxml import etree
from onelogin.saml2 import xml_utils
from onelogin.saml2.xml_utils import OneLogin_Saml2_XML

_local = threading.local()
SCHEMAS = Path(xml_utils.__file__).parent / "schemas"


def _schema(name: str) -> etree.XMLSchema:
    cache: dict[str, etree.XMLSchema] = getattr(_local, "schemas", None) or {}
    _local.schemas = cache
    found = cache.get(name)
    if found is None:
        with (SCHEMAS / name).open() as source:
            found = etree.XMLSchema(etree.parse(source))
        cache[name] = found
    return found


def validate_xml(xml: Any, schema: str, debug: bool = False) -> Any:
    del debug
    try:
        document = OneLogin_Saml2_XML.to_etree(xml)
    except Exception:  # noqa: BLE001 - the library's own contract: a code, never an exception
        return "unloaded_xml"
    if not _schema(schema).validate(document):
        return "invalid_xml"
    return document


def install() -> None:
    OneLogin_Saml2_XML.validate_xml = staticmethod(validate_xml)
