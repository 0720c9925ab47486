"""What stops a decision import as a whole (a bad row only fails that row)."""

from __future__ import annotations

from domain.errors import DomainError


class SourceUnreadable(DomainError):
    """The source cannot be read: not UTF-8, a CSV field over the limit, the legacy database
    refused the connection or the query. `details["field"]` names the parameter to fix; the
    message never carries the connection's password."""

    code = "SOURCE_UNREADABLE"
