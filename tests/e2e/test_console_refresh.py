"""A console page's requests that all find the access token expired share one refresh: the
directory user stays signed in (presenting the refresh token twice would have been taken for
theft by reuse detection, ending the session). Real app, PostgreSQL and slapd."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from api.console.session import COOKIE, ConsoleSession
from tests.e2e.ldap_support import directory_tenant
from tests.peers.http import Api
from tests.peers.slapd import Slapd

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.ldap]


def _signed_in_cookie(api: Api, slug: str) -> ConsoleSession:
    with httpx.Client(base_url=api.url, timeout=30) as client:
        page = client.get("/console/sign-in")
        csrf = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
        assert csrf is not None
        signed = client.post(
            "/console/sign-in/ldap",
            data={
                "tenant_slug": slug,
                "username": "alice",
                "password": "alice-password",
                "csrf_token": csrf.group(1),
            },
        )
        assert signed.status_code == 303, signed.text
        session = ConsoleSession.decode(client.cookies.get(COOKIE))
    assert session is not None
    assert session.refresh_token is not None
    return session


async def test_concurrent_requests_with_an_expired_access_token_share_one_refresh(
    api: Api, platform: httpx.Client, slapd: Slapd
) -> None:
    tenant_id, slug = directory_tenant(api, platform, slapd, "refresh")
    session = _signed_in_cookie(api, slug)
    # what the cookie holds once its access token is no longer accepted
    stale = ConsoleSession(session.seed, "expired.access.token", session.refresh_token)
    page = f"/console/tenants/{tenant_id}"
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
        answers = await asyncio.gather(
            *(client.get(page, headers={"cookie": f"{COOKIE}={stale.encode()}"}) for _ in range(4))
        )
    assert [a.status_code for a in answers] == [200] * 4, [a.headers for a in answers]
    renewed = {ConsoleSession.decode(a.cookies.get(COOKIE)) for a in answers}
    assert len(renewed) == 1  # one rotation: every request was given the same new tokens
    (fresh,) = renewed
    assert fresh is not None
    assert fresh.refresh_token != session.refresh_token
    assert fresh.seed == session.seed  # open forms keep their CSRF token
    # the session survived: no reuse was detected, the new tokens work, and so does their refresh
    again = httpx.get(f"{api.url}{page}", cookies={COOKIE: fresh.encode()}, timeout=30)
    assert again.status_code == 200
    later = ConsoleSession(fresh.seed, "expired.again", fresh.refresh_token)
    once_more = httpx.get(f"{api.url}{page}", cookies={COOKIE: later.encode()}, timeout=30)
    assert once_more.status_code == 200
