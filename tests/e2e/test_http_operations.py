"""Operations surface over real HTTP: the Prometheus content type, refusals labelled with their
route, and the Swagger UI page with every asset it references served by this server."""

from __future__ import annotations

import logging
import re
from html.parser import HTMLParser
from uuid import UUID

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from domain.maci import MaciRole
from tests.peers.http import HASH, Api, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


def test_metrics_content_type_is_prometheus_clients_own(api: Api) -> None:
    with api.client() as anonymous:
        response = anonymous.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    assert response.headers.get_list("content-type") == [CONTENT_TYPE_LATEST]


def test_a_rate_limited_request_is_logged_and_counted_with_its_route(
    api: Api, platform: httpx.Client, unique: str, caplog: pytest.LogCaptureFixture
) -> None:
    tenant_id = UUID(
        api.create_tenant(platform, f"route-{unique}", max_requests_per_minute=1)["tenant_id"]
    )

    def tenants_lines() -> list[dict[str, object]]:
        return [
            r.fields  # type: ignore[attr-defined]
            for r in caplog.records
            if r.name == "acgs.http.access" and str(tenant_id) == r.fields.get("tenant_id")  # type: ignore[attr-defined]
        ]

    with (
        api.client(api.token(MaciRole.EXECUTIVE, tenant_id=tenant_id)) as own,
        caplog.at_level(logging.INFO, logger="acgs.http.access"),
    ):
        assert own.get(f"/v1/tenants/{tenant_id}").status_code == 200
        refused = own.get(f"/v1/tenants/{tenant_id}")
        assert refused.status_code == 429
        unknown = own.get(f"/v1/no-such-route/{unique}")
        # The server's thread logs a request once its answer is sent: the client may have the
        # last answer first.
        logged = wait_for(lambda: len(tenants_lines()) >= 3 and tenants_lines())
    assert [(f["status"], f["route"]) for f in logged] == [
        (200, "/v1/tenants/{tenant_id}"),
        (429, "/v1/tenants/{tenant_id}"),
        (unknown.status_code, "unrouted"),
    ]
    with api.client() as anonymous:
        metrics = anonymous.get("/metrics").text
    refusals = [
        (s.labels["route"], s.value)
        for family in text_string_to_metric_families(metrics)
        for s in family.samples
        if s.name == "acgs_http_requests_total"
        and s.labels["tenant"] == str(tenant_id)
        and s.labels["status"] == "429"
    ]
    # the unknown path was refused too (the budget is spent): it matches no route
    assert unknown.status_code == 429
    assert sorted(refusals) == [("/v1/tenants/{tenant_id}", 1.0), ("unrouted", 1.0)]


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"src", "href"} and value:
                self.urls.append(value)


@pytest.mark.parametrize("path", ["/schema/swagger", "/schema/swagger/"])
def test_swagger_ui_page_and_every_asset_it_references_are_served_here(api: Api, path: str) -> None:
    with api.client() as anonymous:
        page = anonymous.get(path)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
        references = _References()
        references.feed(page.text)
        assert len(references.urls) >= 4
        for url in references.urls:
            assert url.startswith("/"), url  # nothing from another host
            asset = anonymous.get(url)
            assert asset.status_code == 200, url
            assert asset.content, url
        init = anonymous.get("/schema/swagger/init.js").text
        assert "SwaggerUIBundle(" in init
        assert "validatorUrl: null" in init
        document_url = re.search(r'url: "([^"]+)"', init)
        assert document_url is not None
        document = anonymous.get(document_url[1])
        assert document.status_code == 200
        assert document.json()["info"]["title"] == "ACGS Enterprise API"
        bundle = anonymous.get("/schema/swagger/assets/swagger-ui-bundle.js")
        assert bundle.headers["content-type"].split(";")[0] in {
            "text/javascript",
            "application/javascript",
        }
        assert b"SwaggerUIBundle" in bundle.content


@pytest.mark.parametrize("path", ["/schema/redoc", "/schema/elements", "/schema/rapidoc"])
def test_other_schema_pages_are_404_in_the_envelope(api: Api, path: str) -> None:
    with api.client() as anonymous:
        response = anonymous.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["code"] == "NOT_FOUND"
    assert response.json()["error"]["constitutional_hash"] == HASH
