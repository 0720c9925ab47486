"""A job's secret parameters: sealed under a data key of the job's own before anything is
recorded, masked where the request showed them, and opened only for the worker."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import pytest

from commands import job_secrets
from domain.errors import ValidationFailed
from domain.secrets import is_sealed
from infra.keys.envelope import EnvelopeSealer
from infra.keys.local_file import LocalKeyFile
from infra.memory.data_keys import InMemoryDataKeys
from tests.unit.migration.support import CountingKind

KIND = CountingKind(secret_parameters=frozenset({"conninfo", "token"}))


@pytest.fixture
def sealer(tmp_path: Path) -> EnvelopeSealer:
    return EnvelopeSealer(LocalKeyFile(tmp_path / "keys"), InMemoryDataKeys())


def test_secrets_are_sealed_masked_where_shown_and_opened_for_the_worker(
    sealer: EnvelopeSealer,
) -> None:
    tenant = uuid4()
    conninfo = "postgresql://u:pw!hunter2@db/x"  # '!' and '@' never appear in a sealed value
    parameters = {"conninfo": conninfo, "token": "t0k!", "table": "legacy"}
    # the request named the connection string; the token is one the kind derived itself
    request = {"conninfo": conninfo, "table": "legacy"}

    kept, shown = job_secrets.seal(sealer, tenant, KIND, parameters, request)

    assert shown == {"conninfo": job_secrets.MASK, "table": "legacy"}
    assert is_sealed(kept["conninfo"])
    assert is_sealed(kept["token"])
    assert kept["table"] == "legacy"
    assert "pw!hunter2" not in str(kept)
    assert "t0k!" not in str(kept)
    assert job_secrets.opened(sealer, tenant, KIND, kept) == parameters
    assert job_secrets.opened(sealer, uuid4(), KIND, {**kept, job_secrets.KEY_ID: 7}) == {
        k: v for k, v in kept.items() if k != job_secrets.KEY_ID
    }  # no usable key id: left sealed


def test_a_secret_with_no_key_provider_is_refused_naming_each(sealer: EnvelopeSealer) -> None:
    with pytest.raises(ValidationFailed) as err:
        job_secrets.seal(None, uuid4(), KIND, {"conninfo": "x", "token": "y"}, {})
    assert [p["field"] for p in err.value.details["fields"]] == ["conninfo", "token"]


def test_without_secrets_nothing_is_sealed() -> None:
    kept, shown = job_secrets.seal(None, uuid4(), KIND, {"table": "t", "token": None}, {"a": 1})
    assert (kept, shown) == ({"table": "t", "token": None}, {"a": 1})
