"""The Vault/OpenBao transit key provider (through `hvac`): one transit key per tenant
(`acgs-tenant-<tenant_id>`, aes256-gcm96), created on first use. Data keys come from transit's
`datakey/plaintext` endpoint (the plaintext is used in memory, the ciphertext stored); unwrapping
is a transit decrypt; rotation is transit's `rotate` (a new key version, picked up by every process
at once, no restart); rewrapping is transit's `rewrap` (the data key never leaves the server in
clear). Destroying allows deletion on the key and deletes it.

Authentication: a token, or AppRole (role id + secret id), logging in again once when the token
was refused (expired).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

import hvac
import requests
from hvac import exceptions as vault_errors

from domain.keys import DataKey, KeyDestroyed, KeyProviderUnavailable

KEY_PREFIX = "acgs-tenant-"
T = TypeVar("T")


class OpenBaoTransit:
    name = "openbao"

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        role_id: str | None = None,
        secret_id: str | None = None,
        mount: str = "transit",
        ca_cert: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        if not token and not (role_id and secret_id):
            msg = "a token or an AppRole role id and secret id is required"
            raise ValueError(msg)
        self._client = hvac.Client(url=url, token=token, verify=ca_cert or True, timeout=timeout)
        self._role = (role_id, secret_id) if role_id and secret_id else None
        self._mount = mount
        if self._role is not None:
            self._login()

    # --- the port -------------------------------------------------------------------------------

    def generate_data_key(self, tenant_id: UUID) -> DataKey:
        def generate() -> Any:
            return self._client.secrets.transit.generate_data_key(
                name=_key(tenant_id), key_type="plaintext", mount_point=self._mount
            )

        try:
            response = self._call(generate)
        except KeyDestroyed:
            self._create(tenant_id)
            response = self._call(generate)
        data = response["data"]
        return DataKey(base64.b64decode(data["plaintext"]), data["ciphertext"])

    def unwrap(self, tenant_id: UUID, wrapped: str) -> bytes:
        response = self._call(
            lambda: self._client.secrets.transit.decrypt_data(
                name=_key(tenant_id), ciphertext=wrapped, mount_point=self._mount
            )
        )
        return base64.b64decode(response["data"]["plaintext"])

    def rewrap(self, tenant_id: UUID, wrapped: str) -> str:
        response = self._call(
            lambda: self._client.secrets.transit.rewrap_data(
                name=_key(tenant_id), ciphertext=wrapped, mount_point=self._mount
            )
        )
        return str(response["data"]["ciphertext"])

    def rotate(self, tenant_id: UUID) -> int:
        try:
            self._call(
                lambda: self._client.secrets.transit.rotate_key(
                    name=_key(tenant_id), mount_point=self._mount
                )
            )
        except KeyDestroyed:
            self._create(tenant_id)
            self._call(
                lambda: self._client.secrets.transit.rotate_key(
                    name=_key(tenant_id), mount_point=self._mount
                )
            )
        return self.key_version(tenant_id)

    def key_version(self, tenant_id: UUID) -> int:
        try:
            response = self._call(
                lambda: self._client.secrets.transit.read_key(
                    name=_key(tenant_id), mount_point=self._mount
                )
            )
        except KeyDestroyed:
            return 0
        return int(response["data"]["latest_version"])

    def wrapped_version(self, wrapped: str) -> int:
        prefix, version, _ = wrapped.split(":", 2)  # vault:v3:...
        if prefix != "vault" or not version.startswith("v"):
            raise KeyDestroyed("not a transit ciphertext")
        return int(version[1:])

    def destroy(self, tenant_id: UUID) -> None:
        try:
            self._call(
                lambda: self._client.secrets.transit.update_key_configuration(
                    name=_key(tenant_id), deletion_allowed=True, mount_point=self._mount
                )
            )
        except KeyDestroyed:
            return  # never created, or gone already
        self._call(
            lambda: self._client.secrets.transit.delete_key(
                name=_key(tenant_id), mount_point=self._mount
            )
        )

    # --- plumbing -------------------------------------------------------------------------------

    def _create(self, tenant_id: UUID) -> None:
        self._call(
            lambda: self._client.secrets.transit.create_key(
                name=_key(tenant_id), key_type="aes256-gcm96", mount_point=self._mount
            )
        )

    def _login(self) -> None:
        assert self._role is not None
        role_id, secret_id = self._role
        try:
            self._client.auth.approle.login(role_id=role_id, secret_id=secret_id)
        except (vault_errors.VaultError, requests.RequestException) as exc:
            msg = f"AppRole login to the key provider failed ({type(exc).__name__})"
            raise KeyProviderUnavailable(msg) from None

    def _call(self, request: Callable[[], T], *, again: bool = True) -> T:
        try:
            return request()
        except vault_errors.Forbidden:
            if again and self._role is not None:
                self._login()
                return self._call(request, again=False)
            msg = "the key provider refused the request (permission denied)"
            raise KeyProviderUnavailable(msg) from None
        except (vault_errors.InvalidPath, vault_errors.InvalidRequest) as exc:
            # transit answers 400 "encryption key not found" / 404 for a key that is not there
            raise KeyDestroyed(
                f"the tenant's transit key is not available ({exc.errors})"
            ) from None
        except (vault_errors.VaultError, requests.RequestException) as exc:
            msg = f"the key provider is unavailable ({type(exc).__name__})"
            raise KeyProviderUnavailable(msg) from None


def _key(tenant_id: UUID) -> str:
    return f"{KEY_PREFIX}{UUID(str(tenant_id))}"
