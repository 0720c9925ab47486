"""Where a migration job's input comes from: a file or archive uploaded with the request, stored
under the data directory (an archive unpacked there), or a server-side path inside a directory the
operator allows. Anything else is refused with the field that named it.

Archives (zip, tar, tar.gz, tgz, tar.bz2, tar.xz) are unpacked member by member: a member with an
absolute path, a `..` component, a link or a device is refused, and so is an archive whose
members add up to more than `unpacked_limit` bytes.
"""

from __future__ import annotations

import shutil
import tarfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO
from uuid import UUID

from commands.migration_kinds import JobSource
from domain.errors import ValidationFailed

# The keys of `source_config` that may name a server-side path (the spec's example uses
# `policy_file_path`); at most one may be given.
PATH_KEYS = ("source_path", "policy_file_path", "file_path")
_ARCHIVES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Upload:
    filename: str
    stream: BinaryIO  # read from its start; at most the upload limit plus one byte is read
    media_type: str | None = None


@dataclass(frozen=True)
class JobSources:
    upload_root: Path  # <data dir>/migrations/uploads
    allowed_dirs: Sequence[Path]  # server-side paths must lie inside one of these
    upload_limit: int  # bytes of one upload
    unpacked_limit: int  # bytes of one archive's members together

    def resolve(
        self, job_id: UUID, source_config: Mapping[str, Any], upload: Upload | None
    ) -> JobSource | None:
        """The job's source (None when it names none); ValidationFailed naming the field."""
        named = [key for key in PATH_KEYS if key in source_config]
        if upload is not None and named:
            raise ValidationFailed.field(
                f"source_config.{named[0]}", "give either an uploaded file or a server-side path"
            )
        if len(named) > 1:
            raise ValidationFailed.field(
                f"source_config.{named[1]}", f"give only one of {', '.join(PATH_KEYS)}"
            )
        if upload is not None:
            return self._store(job_id, upload)
        if named:
            return self._server_path(named[0], source_config[named[0]])
        return None

    def discard(self, job_id: UUID) -> None:
        """Remove what was stored for a job that was not created."""
        shutil.rmtree(self.upload_root / str(job_id), ignore_errors=True)

    # --- server-side paths --------------------------------------------------------------------

    def _server_path(self, key: str, raw: object) -> JobSource:
        field = f"source_config.{key}"
        if not isinstance(raw, str) or not raw.strip() or "\x00" in raw:
            raise ValidationFailed.field(field, "must be a path")
        path = Path(raw)
        if not path.is_absolute():
            raise ValidationFailed.field(field, "must be an absolute path")
        resolved = path.resolve()
        roots = [root.resolve() for root in self.allowed_dirs]
        if not any(resolved.is_relative_to(root) for root in roots):
            message = (
                "must lie inside a directory the operator allows (ACGS_MIGRATION_SOURCE_DIRS)"
                if roots
                else "server-side paths are not allowed here (ACGS_MIGRATION_SOURCE_DIRS is "
                "unset): upload the file instead"
            )
            raise ValidationFailed.field(field, message)
        if not resolved.exists():
            raise ValidationFailed.field(field, "does not exist")
        return JobSource(resolved, resolved.name)

    # --- uploads ------------------------------------------------------------------------------

    def _store(self, job_id: UUID, upload: Upload) -> JobSource:
        name = PurePosixPath(upload.filename.replace("\\", "/")).name
        if not name or name in (".", "..") or "\x00" in name:
            raise ValidationFailed.field("file", "needs a file name")
        directory = self.upload_root / str(job_id)
        directory.mkdir(parents=True, exist_ok=True)
        stored = directory / name
        try:
            self._copy(upload.stream, stored)
            if not name.lower().endswith(_ARCHIVES):
                return JobSource(stored, name, upload.media_type)
            unpacked = directory / "unpacked"
            unpacked.mkdir()
            self._unpack(stored, unpacked)
            stored.unlink()
            return JobSource(unpacked, name, upload.media_type)
        except BaseException:
            self.discard(job_id)
            raise

    def _copy(self, stream: BinaryIO, target: Path) -> None:
        size = 0
        with target.open("wb") as out:
            while chunk := stream.read(_CHUNK):
                size += len(chunk)
                if size > self.upload_limit:
                    limit = f"{self.upload_limit} bytes (ACGS_MIGRATION_UPLOAD_MAX_BYTES)"
                    raise ValidationFailed.field("file", f"is larger than {limit}")
                out.write(chunk)

    def _unpack(self, archive: Path, target: Path) -> None:
        if archive.name.lower().endswith(".zip"):
            self._unzip(archive, target)
        else:
            self._untar(archive, target)

    def _unzip(self, archive: Path, target: Path) -> None:
        try:
            with zipfile.ZipFile(archive) as zipped:
                members = zipped.infolist()
                self._check_sizes(sum(m.file_size for m in members))
                for member in members:
                    relative = _safe_member(member.filename)
                    if member.is_dir():
                        continue
                    if (member.external_attr >> 16) & 0o170000 == 0o120000:
                        raise _bad_member(member.filename, "is a link")
                    out = target / relative
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with zipped.open(member) as source, out.open("wb") as sink:
                        shutil.copyfileobj(source, sink, _CHUNK)
        except zipfile.BadZipFile:
            raise ValidationFailed.field("file", "is not a readable zip archive") from None

    def _untar(self, archive: Path, target: Path) -> None:
        try:
            with tarfile.open(archive) as tarred:
                members = tarred.getmembers()
                self._check_sizes(sum(m.size for m in members if m.isfile()))
                for member in members:
                    relative = _safe_member(member.name)
                    if member.isdir():
                        continue
                    if not member.isfile():
                        raise _bad_member(member.name, "is not a regular file (a link or device)")
                    extracted = tarred.extractfile(member)
                    assert extracted is not None  # a regular member always has a file object
                    out = target / relative
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with extracted, out.open("wb") as sink:
                        shutil.copyfileobj(extracted, sink, _CHUNK)
        except tarfile.TarError:
            raise ValidationFailed.field("file", "is not a readable tar archive") from None

    def _check_sizes(self, total: int) -> None:
        if total > self.unpacked_limit:
            raise ValidationFailed.field(
                "file", f"unpacks to more than {self.unpacked_limit} bytes", unpacked_bytes=total
            )


def _safe_member(name: str) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or not path.parts or ":" in path.parts[0]:
        raise _bad_member(name, "leaves the archive's directory (absolute or with ..)")
    return path


def _bad_member(name: str, why: str) -> ValidationFailed:
    return ValidationFailed.field("file", f"archive member {name[:200]!r} {why}", member=name[:200])
