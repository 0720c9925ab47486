"""Where a job's input may come from: uploads (files, zip and tar archives unpacked safely, size
limits) and server-side paths inside the operator's allowed directories."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path
from uuid import uuid4

import pytest

from commands.migration_sources import JobSources, Upload
from domain.errors import ValidationFailed


def _sources(tmp_path: Path, *allowed: Path, limit: int = 1 << 20) -> JobSources:
    return JobSources(tmp_path / "uploads", list(allowed), limit, 4 * limit)


def _fields(failure: pytest.ExceptionInfo[ValidationFailed]) -> list[str]:
    return [f["field"] for f in failure.value.details["fields"]]


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def _tar(members: dict[str, bytes], link: str | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        if link is not None:
            info = tarfile.TarInfo(link)
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            archive.addfile(info)
    return out.getvalue()


def test_an_uploaded_file_is_stored_under_the_job(tmp_path: Path) -> None:
    job = uuid4()
    source = _sources(tmp_path).resolve(job, {}, Upload("a.json", io.BytesIO(b"{}")))
    assert source is not None
    assert source.path == tmp_path / "uploads" / str(job) / "a.json"
    assert source.path.read_bytes() == b"{}"


def test_a_zip_is_unpacked_into_a_directory(tmp_path: Path) -> None:
    data = _zip({"legacy/a.json": b"{}", "legacy/sub/b.yaml": b"x: 1"})
    source = _sources(tmp_path).resolve(uuid4(), {}, Upload("legacy.zip", io.BytesIO(data)))
    assert source is not None
    assert source.filename == "legacy.zip"
    assert sorted(p.name for p in source.path.rglob("*") if p.is_file()) == ["a.json", "b.yaml"]


def test_a_tar_gz_is_unpacked_into_a_directory(tmp_path: Path) -> None:
    data = _tar({"p/a.rules": b"POLICY a"})
    source = _sources(tmp_path).resolve(uuid4(), {}, Upload("p.tar.gz", io.BytesIO(data)))
    assert source is not None
    assert (source.path / "p" / "a.rules").read_bytes() == b"POLICY a"


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("up.zip", _zip({"../up.json": b"{}"})),
        ("abs.zip", _zip({"/etc/cron.d/x": b"{}"})),
        ("up.tar.gz", _tar({"a/../../up.json": b"{}"})),
        ("link.tar.gz", _tar({"a.json": b"{}"}, link="evil.json")),
    ],
)
def test_archive_members_that_escape_or_link_are_refused_and_nothing_is_kept(
    tmp_path: Path, name: str, data: bytes
) -> None:
    job = uuid4()
    with pytest.raises(ValidationFailed) as failure:
        _sources(tmp_path).resolve(job, {}, Upload(name, io.BytesIO(data)))
    assert _fields(failure) == ["file"]
    assert not (tmp_path / "uploads" / str(job)).exists()
    assert not (tmp_path / "up.json").exists()


def test_an_upload_over_the_limit_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed) as failure:
        _sources(tmp_path, limit=1024).resolve(
            uuid4(), {}, Upload("big.json", io.BytesIO(b"x" * 1025))
        )
    assert "larger than 1024 bytes" in str(failure.value.message)


def test_an_archive_that_unpacks_beyond_its_limit_is_refused(tmp_path: Path) -> None:
    data = _zip({"a.json": b"0" * 5000})  # compresses far below the upload limit
    with pytest.raises(ValidationFailed, match="unpacks to more than"):
        _sources(tmp_path, limit=1024).resolve(uuid4(), {}, Upload("a.zip", io.BytesIO(data)))


def test_a_server_side_path_must_lie_inside_an_allowed_directory(tmp_path: Path) -> None:
    allowed = tmp_path / "allowed"
    (allowed / "legacy").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    sources = _sources(tmp_path, allowed)
    inside = sources.resolve(uuid4(), {"policy_file_path": str(allowed / "legacy")}, None)
    assert inside is not None
    assert inside.path == (allowed / "legacy").resolve()
    for path in (str(allowed / ".." / "secret"), "relative/path", str(allowed / "missing")):
        with pytest.raises(ValidationFailed) as failure:
            sources.resolve(uuid4(), {"policy_file_path": path}, None)
        assert _fields(failure) == ["source_config.policy_file_path"]


def test_a_symlink_out_of_the_allowed_directory_is_refused(tmp_path: Path) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (tmp_path / "secret").mkdir()
    (allowed / "link").symlink_to(tmp_path / "secret")
    with pytest.raises(ValidationFailed):
        _sources(tmp_path, allowed).resolve(uuid4(), {"source_path": str(allowed / "link")}, None)


def test_without_allowed_directories_no_server_side_path_is_accepted(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed, match="ACGS_MIGRATION_SOURCE_DIRS is unset"):
        _sources(tmp_path).resolve(uuid4(), {"file_path": str(tmp_path)}, None)


def test_an_upload_and_a_path_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed, match="either an uploaded file or a server-side path"):
        _sources(tmp_path, tmp_path).resolve(
            uuid4(), {"policy_file_path": str(tmp_path)}, Upload("a.json", io.BytesIO(b"{}"))
        )


def test_only_one_server_side_path_may_be_named(tmp_path: Path) -> None:
    config = {"source_path": str(tmp_path), "file_path": str(tmp_path)}
    with pytest.raises(ValidationFailed) as failure:
        _sources(tmp_path, tmp_path).resolve(uuid4(), config, None)
    assert _fields(failure) == ["source_config.file_path"]
    assert "give only one of source_path, policy_file_path, file_path" in failure.value.message


@pytest.mark.parametrize("raw", [42, "", "   ", "/srv/legacy\x00.json"])
def test_a_server_side_path_must_be_a_path(tmp_path: Path, raw: object) -> None:
    with pytest.raises(ValidationFailed) as failure:
        _sources(tmp_path, tmp_path).resolve(uuid4(), {"source_path": raw}, None)
    assert failure.value.details["fields"] == [
        {"field": "source_config.source_path", "message": "must be a path"}
    ]


@pytest.mark.parametrize("filename", ["", "..", "legacy/..", "a\x00.json"])
def test_an_upload_needs_a_file_name(tmp_path: Path, filename: str) -> None:
    with pytest.raises(ValidationFailed, match="needs a file name"):
        _sources(tmp_path).resolve(uuid4(), {}, Upload(filename, io.BytesIO(b"{}")))
    assert not (tmp_path / "uploads").exists()


def test_directory_members_of_an_archive_only_hold_their_files(tmp_path: Path) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("legacy/", b"")
        archive.writestr("legacy/a.json", b"{}")
    tarred = io.BytesIO()
    with tarfile.open(fileobj=tarred, mode="w") as archive:
        folder = tarfile.TarInfo("legacy")
        folder.type = tarfile.DIRTYPE
        archive.addfile(folder)
        info = tarfile.TarInfo("legacy/a.json")
        info.size = 2
        archive.addfile(info, io.BytesIO(b"{}"))
    for name, data in (("l.zip", out.getvalue()), ("l.tar", tarred.getvalue())):
        source = _sources(tmp_path).resolve(uuid4(), {}, Upload(name, io.BytesIO(data)))
        assert source is not None
        files = [p.relative_to(source.path) for p in source.path.rglob("*") if p.is_file()]
        assert files == [Path("legacy/a.json")]


def test_a_link_inside_a_zip_is_refused(tmp_path: Path) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        link = zipfile.ZipInfo("legacy/passwd")
        link.external_attr = (0o120777 << 16) | 0
        archive.writestr(link, "/etc/passwd")
    job = uuid4()
    with pytest.raises(ValidationFailed, match="is a link"):
        _sources(tmp_path).resolve(job, {}, Upload("l.zip", io.BytesIO(out.getvalue())))
    assert not (tmp_path / "uploads" / str(job)).exists()


@pytest.mark.parametrize(
    ("name", "message"),
    [("legacy.zip", "not a readable zip archive"), ("legacy.tgz", "not a readable tar archive")],
)
def test_an_archive_that_cannot_be_read_is_refused(tmp_path: Path, name: str, message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        _sources(tmp_path).resolve(uuid4(), {}, Upload(name, io.BytesIO(b"not an archive")))
