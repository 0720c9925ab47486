"""One contract for the key-provider port (`domain.keys.KeyProvider`), run against every
adapter: the local key file, and Vault/OpenBao transit on a real `bao server -dev`. The envelope
sealer on top of each adapter is held to the same contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from domain.keys import KeyDestroyed, KeyProvider, KeyProviderUnavailable
from domain.secrets import SecretUnreadable
from infra.keys.envelope import EnvelopeSealer
from infra.keys.local_file import LocalKeyFile
from infra.keys.openbao import OpenBaoTransit
from infra.memory.data_keys import InMemoryDataKeys
from tests.peers.http import free_port
from tests.peers.openbao import OpenBao


class KeyProviderContract:
    """Subclasses provide `provider` (a fixture)."""

    def test_a_data_key_unwraps_to_itself(self, provider: KeyProvider) -> None:
        tenant = uuid4()
        key = provider.generate_data_key(tenant)
        assert len(key.plaintext) == 32
        assert key.plaintext.hex() not in key.wrapped
        assert provider.unwrap(tenant, key.wrapped) == key.plaintext

    def test_another_tenant_cannot_unwrap(self, provider: KeyProvider) -> None:
        owner, other = uuid4(), uuid4()
        key = provider.generate_data_key(owner)
        provider.generate_data_key(other)
        with pytest.raises(KeyDestroyed):
            provider.unwrap(other, key.wrapped)

    def test_rotation_adds_a_version_and_old_keys_still_unwrap(self, provider: KeyProvider) -> None:
        tenant = uuid4()
        key = provider.generate_data_key(tenant)
        before = provider.key_version(tenant)
        after = provider.rotate(tenant)
        assert after == before + 1 == provider.key_version(tenant)
        assert provider.wrapped_version(key.wrapped) == before
        assert provider.unwrap(tenant, key.wrapped) == key.plaintext
        assert provider.wrapped_version(provider.generate_data_key(tenant).wrapped) == after

    def test_rewrap_moves_a_key_to_the_newest_version(self, provider: KeyProvider) -> None:
        tenant = uuid4()
        key = provider.generate_data_key(tenant)
        newest = provider.rotate(tenant)
        rewrapped = provider.rewrap(tenant, key.wrapped)
        assert rewrapped != key.wrapped
        assert provider.wrapped_version(rewrapped) == newest
        assert provider.unwrap(tenant, rewrapped) == key.plaintext

    def test_destroying_the_key_makes_everything_it_wrapped_unreadable(
        self, provider: KeyProvider
    ) -> None:
        tenant, bystander = uuid4(), uuid4()
        key = provider.generate_data_key(tenant)
        kept = provider.generate_data_key(bystander)
        provider.rotate(tenant)
        provider.destroy(tenant)
        provider.destroy(tenant)  # idempotent
        with pytest.raises(KeyDestroyed):
            provider.unwrap(tenant, key.wrapped)
        assert provider.key_version(tenant) == 0
        assert provider.unwrap(bystander, kept.wrapped) == kept.plaintext

    def test_the_sealer_round_trips_and_binds_the_field_path(self, provider: KeyProvider) -> None:
        sealer = EnvelopeSealer(provider, InMemoryDataKeys())
        tenant = uuid4()
        key_id = sealer.new_key(tenant)
        sealed = sealer.seal(tenant, key_id, "config.bind_password", "hunter2-unique")
        assert "hunter2" not in sealed
        assert sealer.open(tenant, key_id, "config.bind_password", sealed) == "hunter2-unique"
        with pytest.raises(SecretUnreadable):
            sealer.open(tenant, key_id, "config.client_secret", sealed)
        with pytest.raises(SecretUnreadable):
            sealer.open(uuid4(), key_id, "config.bind_password", sealed)

    def test_the_sealer_reads_after_rotation_in_a_fresh_process(
        self, provider: KeyProvider
    ) -> None:
        store = InMemoryDataKeys()
        tenant = uuid4()
        writer = EnvelopeSealer(provider, store)
        key_id = writer.new_key(tenant)
        sealed = writer.seal(tenant, key_id, "config.token", "tok")
        rotation = writer.rotate_tenant(tenant)
        assert rotation.rewrapped == 1
        assert store.of_tenant(tenant)[0].kek_version == rotation.kek_version
        reader = EnvelopeSealer(provider, store)  # nothing cached
        assert reader.open(tenant, key_id, "config.token", sealed) == "tok"

    def test_shredding_or_destroying_makes_sealed_values_unreadable(
        self, provider: KeyProvider
    ) -> None:
        store = InMemoryDataKeys()
        tenant = uuid4()
        sealer = EnvelopeSealer(provider, store)
        shredded, kept = sealer.new_key(tenant), sealer.new_key(tenant)
        a = sealer.seal(tenant, shredded, "config.password", "a")
        b = sealer.seal(tenant, kept, "config.password", "b")
        sealer.shred(tenant, shredded)
        with pytest.raises(SecretUnreadable):
            sealer.open(tenant, shredded, "config.password", a)
        assert sealer.open(tenant, kept, "config.password", b) == "b"
        sealer.destroy_tenant(tenant)
        with pytest.raises(SecretUnreadable):
            EnvelopeSealer(provider, store).open(tenant, kept, "config.password", b)


class TestLocalKeyFile(KeyProviderContract):
    @pytest.fixture
    def provider(self, tmp_path: Path) -> KeyProvider:
        return LocalKeyFile(tmp_path / "keys")

    def test_key_files_are_private_and_destroyed_files_are_gone(self, tmp_path: Path) -> None:
        provider = LocalKeyFile(tmp_path / "keys")
        tenant = uuid4()
        provider.generate_data_key(tenant)
        path = tmp_path / "keys" / f"{tenant}.json"
        assert path.stat().st_mode & 0o777 == 0o600
        provider.destroy(tenant)
        assert not path.exists()


@pytest.mark.vault
class TestOpenBaoTransit(KeyProviderContract):
    @pytest.fixture
    def provider(self, openbao: OpenBao) -> KeyProvider:
        return OpenBaoTransit(openbao.url, token=openbao.root_token)

    def test_approle_login_works(self, openbao: OpenBao) -> None:
        role_id, secret_id = _approle(openbao)
        provider = OpenBaoTransit(openbao.url, role_id=role_id, secret_id=secret_id)
        tenant = UUID(int=uuid4().int)
        key = provider.generate_data_key(tenant)
        assert provider.unwrap(tenant, key.wrapped) == key.plaintext
        # its token revoked (or expired): it logs in again and the request goes through
        _vault(openbao, "post", "auth/token/revoke", json={"token": provider._client.token})
        assert provider.unwrap(tenant, key.wrapped) == key.plaintext

    def test_a_refused_approle_login_names_no_secret(self, openbao: OpenBao) -> None:
        role_id, _ = _approle(openbao)
        with pytest.raises(KeyProviderUnavailable) as refused:
            OpenBaoTransit(openbao.url, role_id=role_id, secret_id="wrong-secret-id-4711")
        assert refused.value.message.startswith("AppRole login to the key provider failed")
        assert "wrong-secret-id-4711" not in refused.value.message

    def test_a_token_without_transit_rights_is_refused(self, openbao: OpenBao) -> None:
        weak = _vault(openbao, "post", "auth/token/create", json={"policies": ["default"]})
        provider = OpenBaoTransit(openbao.url, token=weak["auth"]["client_token"])
        with pytest.raises(KeyProviderUnavailable, match=r"refused the request \(permission"):
            provider.generate_data_key(uuid4())

    def test_credentials_are_required(self, openbao: OpenBao) -> None:
        with pytest.raises(ValueError, match="a token or an AppRole role id and secret id"):
            OpenBaoTransit(openbao.url, role_id="only-a-role")

    def test_rotating_a_key_never_made_makes_it_first(self, provider: OpenBaoTransit) -> None:
        assert provider.rotate(uuid4()) == 2  # made at version 1, then rotated

    def test_only_transit_ciphertexts_have_a_version(self, provider: OpenBaoTransit) -> None:
        assert provider.wrapped_version("vault:v3:c2VjcmV0") == 3
        with pytest.raises(KeyDestroyed, match="not a transit ciphertext"):
            provider.wrapped_version("local:v3:c2VjcmV0")


def _vault(openbao: OpenBao, method: str, path: str, **kwargs: Any) -> Any:
    import httpx  # noqa: PLC0415

    headers = {"X-Vault-Token": openbao.root_token}
    response = httpx.request(method, f"{openbao.url}/v1/{path}", headers=headers, **kwargs)
    response.raise_for_status()
    return response.json() if response.content else None


def _approle(openbao: OpenBao) -> tuple[str, str]:
    """An AppRole `acgs` with the rights on transit; its role id and a new secret id."""
    enabled = _vault(openbao, "get", "sys/auth")
    if "approle/" not in enabled.get("data", enabled):
        _vault(openbao, "post", "sys/auth/approle", json={"type": "approle"})
    policy = 'path "transit/*" { capabilities = ["create","read","update","delete","list"] }'
    _vault(openbao, "put", "sys/policies/acl/acgs", json={"policy": policy})
    _vault(
        openbao,
        "post",
        "auth/approle/role/acgs",
        json={"token_policies": ["acgs"], "token_ttl": "1h"},
    )
    role_id = _vault(openbao, "get", "auth/approle/role/acgs/role-id")["data"]["role_id"]
    secret_id = _vault(openbao, "post", "auth/approle/role/acgs/secret-id")["data"]["secret_id"]
    return role_id, secret_id


def test_an_unreachable_vault_is_a_dependency_failure_not_a_crash() -> None:
    token = "s.never-shown-0123456789"
    provider = OpenBaoTransit(f"http://127.0.0.1:{free_port()}", token=token, timeout=1)
    with pytest.raises(KeyProviderUnavailable) as caught:
        provider.generate_data_key(uuid4())
    assert caught.value.code == "DEPENDENCY_UNAVAILABLE"
    assert token not in caught.value.message
