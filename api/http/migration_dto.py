"""Request and response bodies of the migration-job API, as msgspec Structs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from msgspec import UNSET, UnsetType

from api.http.dto import HashValue, documented
from api.http.policy_dto import NO_NUL

JobStatusName = Literal["pending", "running", "completed", "failed", "cancelled"]


class StartJobRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A job whose input is a server-side path named in `source_config` (an upload goes to
    POST .../migrations/upload as multipart/form-data with the same fields)."""

    job_type: Annotated[str, msgspec.Meta(min_length=1, max_length=50), documented(pattern=NO_NUL)]
    source_system: Annotated[
        str, msgspec.Meta(min_length=1, max_length=255), documented(pattern=NO_NUL)
    ]
    source_config: dict[str, Any] = msgspec.field(default_factory=dict)
    constitutional_hash: HashValue | UnsetType = UNSET


class JobAccepted(msgspec.Struct, kw_only=True):
    job_id: UUID
    tenant_id: UUID
    job_type: str
    job_status: str
    created_at: datetime
    status_url: str
    constitutional_hash: str


class JobView(msgspec.Struct, kw_only=True):
    job_id: UUID
    tenant_id: UUID
    job_type: str
    job_status: str
    source_system: str
    source_config: dict[str, Any]
    source_filename: str | None
    total_items: int | None
    processed_items: int
    successful_items: int
    failed_items: int
    progress_percentage: int
    started_at: datetime | None
    estimated_completion: datetime | None
    completed_at: datetime | None
    cancelled_at: datetime | None
    error_details: str | None
    created_at: datetime
    created_by: str
    status_url: str
    constitutional_hash: str


class JobList(msgspec.Struct, kw_only=True):
    jobs: list[JobView]
    total: int
    limit: int
    offset: int
    constitutional_hash: str


class FailedItemView(msgspec.Struct, kw_only=True):
    item_id: str
    error: str
    recommendation: str


class JobResults(msgspec.Struct, kw_only=True):
    job_id: UUID
    job_type: str
    job_status: str
    total_items: int | None
    processed_items: int
    successful_items: int
    failed_items: int
    result_summary: dict[str, Any] | None
    failed_items_details: list[FailedItemView]
    error_details: str | None
    download_url: str
    constitutional_hash: str


class JobCancelled(msgspec.Struct, kw_only=True):
    job_id: UUID
    job_status: str
    processed_items: int
    cancelled_at: datetime | None
    constitutional_hash: str
