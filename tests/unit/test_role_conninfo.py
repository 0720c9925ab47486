"""The connection string of another login role: the role's own password, never the admin's."""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict

from infra.postgres.database import APP_ROLE, role_conninfo

ADMIN = "host=127.0.0.1 port=5432 dbname=acgs user=postgres password=admin-secret"


def test_the_role_gets_its_own_password() -> None:
    params = conninfo_to_dict(role_conninfo(ADMIN, APP_ROLE, "app-secret"))
    assert params == {
        "host": "127.0.0.1",
        "port": "5432",
        "dbname": "acgs",
        "user": APP_ROLE,
        "password": "app-secret",
    }


def test_without_a_password_of_its_own_the_admin_password_is_not_reused() -> None:
    params = conninfo_to_dict(role_conninfo(ADMIN, APP_ROLE))
    assert params["user"] == APP_ROLE
    assert params["password"] == ""


def test_an_admin_url_without_a_password_gives_none() -> None:
    params = conninfo_to_dict(role_conninfo("postgresql://postgres@127.0.0.1/acgs", APP_ROLE))
    assert params == {"host": "127.0.0.1", "dbname": "acgs", "user": APP_ROLE}
