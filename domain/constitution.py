"""The constitutional hash: one configured value that every change and every record carries."""

from __future__ import annotations

import re

DEFAULT_CONSTITUTIONAL_HASH = "cdd01ef066bc6cf2"
CONSTITUTIONAL_HASH_PATTERN = re.compile(r"^[0-9a-f]{16}$")
