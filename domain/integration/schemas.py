"""The configuration schema of each integration type; fields marked `secret` are encrypted at
rest and redacted in every response. docs/integrations.md documents every field."""

from __future__ import annotations

from typing import Any

from domain.integration.fields import (
    ConfigField,
    ConfigSchema,
    Kind,
    Problem,
    dn_check,
    filter_check,
    host_port_check,
    pem_certificates_check,
    url_check,
)
from domain.integration.values import IntegrationType

# Names that always hold a secret, whatever the type (a unit test keeps every schema to it).
SECRET_NAMES = frozenset(
    {"bind_password", "client_secret", "private_key", "token", "api_key", "password", "secret"}
)
ID_TOKEN_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "EdDSA",
)
LDAP_ATTRIBUTES = ("username", "email", "groups", "department")
CLAIMS = ("username", "email", "groups", "department", "name")
HTTPS = url_check("https", "http")


def _text(name: str, description: str, example: Any, **kw: Any) -> ConfigField:
    return ConfigField(name, Kind.STRING, description, example, **kw)


def _secret(name: str, description: str, example: str, *, required: bool = False) -> ConfigField:
    return ConfigField(name, Kind.STRING, description, example, required=required, secret=True)


# --- LDAP ---------------------------------------------------------------------------------------


def _ldap_transport(config: dict[str, Any], production: bool) -> list[Problem]:
    problems: list[Problem] = []
    encrypted = config["server_url"].startswith("ldaps://") or config["start_tls"]
    if config["server_url"].startswith("ldaps://") and config["start_tls"]:
        problems.append(("start_tls", "must be false with an ldaps:// server_url (TLS already)"))
    if not config["tls_verify"] and production:
        problems.append(("tls_verify", "may be false only outside the production profile"))
    if not encrypted and config["tls_verify"]:
        problems.append(
            (
                "server_url",
                "needs ldaps:// or start_tls: true (plain LDAP only with tls_verify: false)",
            )
        )
    return problems


LDAP = ConfigSchema(
    description="A directory (OpenLDAP, Active Directory) for sign-in and group lookup.",
    fields=(
        _text(
            "server_url",
            "ldaps://host:636 or ldap://host:389 (with start_tls)",
            "ldaps://ldap.acme.com:636",
            required=True,
            check=url_check("ldap", "ldaps"),
        ),
        _text(
            "base_dn",
            "Where user and group searches start",
            "dc=acme,dc=com",
            required=True,
            check=dn_check,
        ),
        _text(
            "bind_dn",
            "The service account that searches",
            "cn=acgs2,ou=services,dc=acme,dc=com",
            required=True,
            check=dn_check,
        ),
        _secret(
            "bind_password",
            "The service account's password (never empty)",
            "s3cret!",
            required=True,
        ),
        _text(
            "user_search_filter",
            "Finds a user; {username} is the name typed at sign-in",
            "(uid={username})",
            default="(uid={username})",
            check=filter_check("username"),
        ),
        _text(
            "group_search_filter",
            "Finds a user's groups; {username} and/or {user_dn}. Empty: no group search, the "
            "groups are the user entry's memberOf values (one search per sign-in or refresh)",
            "(member={user_dn})",
            default="(member={user_dn})",
            check=filter_check("username", "user_dn", empty_allowed=True),
        ),
        ConfigField(
            "start_tls",
            Kind.BOOL,
            "Upgrade an ldap:// connection with StartTLS",
            example=False,
            default=False,
        ),
        ConfigField(
            "tls_verify",
            Kind.BOOL,
            "Verify the server certificate (false only outside production)",
            example=True,
            default=True,
        ),
        _text(
            "ca_cert_pem",
            "The CA certificate(s) to trust, PEM (default: the system's)",
            "-----BEGIN CERTIFICATE-----\\nMIIB...\\n-----END CERTIFICATE-----",
            check=pem_certificates_check,
            max_length=65536,
        ),
        ConfigField(
            "connection_pool_size",
            Kind.INT,
            "Connections kept open to the directory",
            10,
            default=10,
            bounds=(5, 50),
        ),
        ConfigField(
            "timeout_seconds",
            Kind.INT,
            "Connect and response timeout",
            5,
            default=5,
            bounds=(1, 60),
        ),
        ConfigField(
            "attribute_map",
            Kind.STRING_MAP,
            "Directory attribute of each user property",
            {
                "username": "uid",
                "email": "mail",
                "groups": "memberOf",
                "department": "departmentNumber",
            },
            default={
                "username": "uid",
                "email": "mail",
                "groups": "memberOf",
                "department": "departmentNumber",
            },
            map_keys=LDAP_ATTRIBUTES,
        ),
    ),
    rules=(_ldap_transport,),
)


# --- SAML ---------------------------------------------------------------------------------------


def _saml_idp(config: dict[str, Any], production: bool) -> list[Problem]:
    del production
    if "idp_metadata_url" in config or "idp_metadata_xml" in config:
        if "idp_metadata_url" in config and "idp_metadata_xml" in config:
            return [("idp_metadata_xml", "give idp_metadata_url or idp_metadata_xml, not both")]
        return []
    return [
        (k, "is required without idp_metadata_url or idp_metadata_xml")
        for k in ("idp_entity_id", "idp_sso_url", "idp_signing_certificates")
        if k not in config
    ]


SAML = ConfigSchema(
    description="A SAML 2.0 identity provider (Okta, Entra ID, ADFS, Keycloak).",
    fields=(
        _text(
            "idp_metadata_url",
            "Where the IdP publishes its metadata",
            "https://idp.acme.com/saml/metadata",
            check=HTTPS,
        ),
        _text(
            "idp_metadata_xml",
            "The IdP's metadata document itself",
            "<EntityDescriptor entityID=...>...</EntityDescriptor>",
            max_length=262144,
        ),
        _text(
            "idp_entity_id", "The IdP's entity id (without metadata)", "https://idp.acme.com/saml"
        ),
        _text(
            "idp_sso_url",
            "The IdP's single sign-on URL (without metadata)",
            "https://idp.acme.com/saml/sso",
            check=HTTPS,
        ),
        _text(
            "idp_slo_url",
            "The IdP's single logout URL",
            "https://idp.acme.com/saml/slo",
            check=HTTPS,
        ),
        ConfigField(
            "idp_signing_certificates",
            Kind.STRING_LIST,
            "The IdP's signing certificates, PEM (without metadata)",
            ["-----BEGIN CERTIFICATE-----\\nMIIC...\\n-----END CERTIFICATE-----"],
            check=pem_certificates_check,
        ),
        _text(
            "sp_entity_id",
            "This service's entity id at the IdP",
            "https://acgs.acme.com/saml/sp",
            required=True,
        ),
        _secret(
            "sp_private_key",
            "The service's signing/decryption key, PEM",
            "-----BEGIN PRIVATE KEY-----\\n...\\n-----END PRIVATE KEY-----",
        ),
        ConfigField(
            "attribute_map",
            Kind.STRING_MAP,
            "SAML attribute of each user property",
            {"email": "urn:oid:0.9.2342.19200300.100.1.3", "groups": "memberOf"},
            default={},
            map_keys=CLAIMS,
        ),
        ConfigField(
            "want_assertions_signed",
            Kind.BOOL,
            "Refuse unsigned assertions",
            example=True,
            default=True,
        ),
        ConfigField(
            "want_assertions_encrypted",
            Kind.BOOL,
            "Refuse unencrypted assertions",
            example=False,
            default=False,
        ),
        ConfigField(
            "allowed_clock_skew_seconds",
            Kind.INT,
            "Tolerance on NotBefore/NotOnOrAfter",
            120,
            default=120,
            bounds=(0, 600),
        ),
        ConfigField(
            "timeout_seconds",
            Kind.INT,
            "Timeout of the metadata fetch",
            5,
            default=5,
            bounds=(1, 60),
        ),
        _text(
            "sp_certificate",
            "The certificate of sp_private_key, PEM (published in the SP metadata)",
            "-----BEGIN CERTIFICATE-----\\nMIIC...\\n-----END CERTIFICATE-----",
            check=pem_certificates_check,
        ),
        ConfigField(
            "allow_idp_initiated",
            Kind.BOOL,
            "Accept responses the IdP sends unasked (IdP-initiated sign-in)",
            example=False,
            default=False,
        ),
        ConfigField(
            "allowed_redirect_urls",
            Kind.STRING_LIST,
            "Where a sign-in may return to (exact URLs, or prefixes ending in /)",
            ["https://app.acme.com/"],
            default=[],
            check=HTTPS,
        ),
        ConfigField(
            "session_seconds",
            Kind.INT,
            "Lifetime of a SAML session",
            28800,
            default=28800,
            bounds=(300, 7 * 86400),
        ),
    ),
    rules=(_saml_idp,),
)


# --- OIDC and OAuth -----------------------------------------------------------------------------


def _discovery(config: dict[str, Any], production: bool) -> list[Problem]:
    del production
    if "issuer" in config or "discovery_url" in config:
        return []
    if "authorization_url" in config and "token_url" in config:
        return []
    return [("issuer", "is required (or discovery_url, or authorization_url and token_url)")]


def _oidc_discovery(config: dict[str, Any], production: bool) -> list[Problem]:
    del production
    if "issuer" in config or "discovery_url" in config:
        return []
    return [("issuer", "is required (or discovery_url)")]


def _oauth_fields(*, oidc: bool) -> tuple[ConfigField, ...]:
    fields: list[ConfigField] = [
        _text(
            "issuer",
            "The provider's issuer URL (discovery at /.well-known/...)",
            "https://login.acme.com",
            check=HTTPS,
        ),
        _text(
            "discovery_url",
            "The discovery document, if not under the issuer",
            "https://login.acme.com/.well-known/openid-configuration",
            check=HTTPS,
        ),
        _text(
            "client_id",
            "This service's client id at the provider",
            "acgs-enterprise",
            required=True,
        ),
        _secret("client_secret", "The client secret (confidential clients)", "c1ient-s3cret"),
        ConfigField(
            "scopes",
            Kind.STRING_LIST,
            "Scopes requested",
            ["openid", "profile", "email"] if oidc else ["read:user"],
            default=["openid", "profile", "email"] if oidc else [],
        ),
        ConfigField(
            "claim_map",
            Kind.STRING_MAP,
            "Claim of each user property",
            {"username": "preferred_username", "email": "email", "groups": "groups"},
            default={"username": "preferred_username", "email": "email", "groups": "groups"}
            if oidc
            else {},
            map_keys=CLAIMS,
        ),
        ConfigField(
            "timeout_seconds",
            Kind.INT,
            "Timeout of discovery and JWKS fetches",
            5,
            default=5,
            bounds=(1, 60),
        ),
        _text(
            "redirect_uri",
            "The callback URL registered at the provider (default: this service's "
            "/v1/auth/oidc/callback as the request reached it)",
            "https://acgs.acme.com/v1/auth/oidc/callback",
            check=HTTPS,
        ),
    ]
    if oidc:
        fields.insert(
            5,
            ConfigField(
                "allowed_id_token_algorithms",
                Kind.STRING_LIST,
                "Signature algorithms accepted on ID tokens (none and HS* never)",
                ["RS256", "ES256"],
                default=["RS256"],
                choices=ID_TOKEN_ALGORITHMS,
            ),
        )
    else:
        fields += [
            _text(
                "authorization_url",
                "The authorization endpoint (without discovery)",
                "https://github.com/login/oauth/authorize",
                check=HTTPS,
            ),
            _text(
                "token_url",
                "The token endpoint (without discovery)",
                "https://github.com/login/oauth/access_token",
                check=HTTPS,
            ),
            _text(
                "userinfo_url",
                "Where the user's profile is read",
                "https://api.github.com/user",
                check=HTTPS,
            ),
        ]
    return tuple(fields)


OIDC = ConfigSchema(
    description="An OpenID Connect provider.",
    fields=_oauth_fields(oidc=True),
    rules=(_oidc_discovery,),
)
OAUTH = ConfigSchema(
    description="A plain OAuth 2.0 provider (no ID token).",
    fields=_oauth_fields(oidc=False),
    rules=(_discovery,),
)


# --- Kafka, SIEM, warehouse ---------------------------------------------------------------------


def _sasl(config: dict[str, Any], production: bool) -> list[Problem]:
    del production
    if config["security_protocol"].startswith("SASL_"):
        return [
            (k, f"is required with {config['security_protocol']}")
            for k in ("sasl_mechanism", "sasl_username", "sasl_password")
            if k not in config
        ]
    return []


KAFKA = ConfigSchema(
    description="An external Kafka cluster that receives the event streams.",
    fields=(
        ConfigField(
            "bootstrap_servers",
            Kind.STRING_LIST,
            "Brokers, host:port",
            ["kafka-1.acme.com:9093"],
            required=True,
            check=host_port_check,
        ),
        _text(
            "security_protocol",
            "How clients connect",
            "SASL_SSL",
            default="SSL",
            choices=("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"),
        ),
        _text(
            "sasl_mechanism",
            "SASL mechanism",
            "SCRAM-SHA-512",
            choices=("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"),
        ),
        _text("sasl_username", "SASL user", "acgs"),
        _secret("sasl_password", "SASL password", "kafka-s3cret"),
        _text(
            "ca_cert_pem",
            "The CA certificate(s) to trust, PEM",
            "-----BEGIN CERTIFICATE-----\\n...",
            check=pem_certificates_check,
            max_length=65536,
        ),
        _text("topic_prefix", "Prefix of the topics written", "acgs.", default=""),
        ConfigField("timeout_seconds", Kind.INT, "Connect timeout", 5, default=5, bounds=(1, 60)),
    ),
    rules=(_sasl,),
)

SIEM_KINDS = ("splunk_hec", "cef_syslog", "datadog", "sentinel", "elasticsearch", "ndjson_file")
_SIEM_NEEDS: dict[str, tuple[str, ...]] = {
    "splunk_hec": ("url", "token"),
    "cef_syslog": ("host", "port"),
    "datadog": ("url", "api_key"),
    "sentinel": (
        "url",
        "tenant_directory_id",
        "client_id",
        "client_secret",
        "dcr_immutable_id",
        "stream_name",
    ),
    "elasticsearch": ("url",),
    "ndjson_file": ("path",),
}


def _needs(table: dict[str, tuple[str, ...]], key: str = "provider") -> Any:
    def rule(config: dict[str, Any], production: bool) -> list[Problem]:
        del production
        chosen = config[key]
        return [(k, f"is required for {chosen}") for k in table[chosen] if k not in config]

    return rule


SIEM = ConfigSchema(
    description="A security information and event management sink.",
    fields=(
        _text("kind", "Which SIEM", "splunk_hec", required=True, choices=SIEM_KINDS),
        _text(
            "url",
            "Endpoint (HEC collector, Datadog intake, DCE, Elasticsearch)",
            "https://splunk.acme.com:8088/services/collector/event",
            check=HTTPS,
        ),
        _text("host", "Syslog receiver host", "siem.acme.com"),
        ConfigField("port", Kind.INT, "Syslog receiver port", 6514, bounds=(1, 65535)),
        _text("protocol", "Syslog transport", "tls", default="tls", choices=("tcp", "tls")),
        _secret("token", "Splunk HEC token", "8f2c-...-hec"),
        _secret("api_key", "Datadog API key", "dd-api-key"),
        _secret("password", "Elasticsearch password (basic auth)", "elastic-s3cret"),
        _text("username", "Elasticsearch user (basic auth)", "acgs"),
        _text("index", "Splunk index or Elasticsearch index", "acgs-audit"),
        ConfigField(
            "indexer_ack",
            Kind.BOOL,
            "Splunk: wait for the indexer acknowledgement of every batch",
            example=False,
            default=False,
        ),
        _text("channel", "Splunk: the X-Splunk-Request-Channel (a GUID)", "0e8a...-channel"),
        _text(
            "tenant_directory_id",
            "Sentinel: the Entra directory (tenant) id",
            "72f988bf-86f1-41af-91ab-2d7cd011db47",
        ),
        _text(
            "client_id",
            "Sentinel: the Entra application id",
            "00000000-0000-0000-0000-000000000001",
        ),
        _secret("client_secret", "Sentinel: the Entra application secret", "entra-s3cret"),
        _text("dcr_immutable_id", "Sentinel: the data collection rule", "dcr-0123456789abcdef"),
        _text("stream_name", "Sentinel: the DCR stream", "Custom-ACGS_CL"),
        _text(
            "authority_url",
            "Sentinel: the Entra ID authority (default https://login.microsoftonline.com)",
            "https://login.microsoftonline.com",
            check=HTTPS,
        ),
        _text("path", "NDJSON file for Filebeat", "/var/log/acgs/audit.ndjson"),
        ConfigField(
            "rotate_max_bytes",
            Kind.INT,
            "NDJSON: rotate the file before it grows past this many bytes",
            104_857_600,
            default=104_857_600,
            bounds=(1024, 10_737_418_240),
        ),
        ConfigField(
            "rotate_max_seconds",
            Kind.INT,
            "NDJSON: rotate the file once it is this old",
            3600,
            default=3600,
            bounds=(1, 604_800),
        ),
        _text(
            "ca_cert_pem",
            "The CA certificate(s) to trust, PEM",
            "-----BEGIN CERTIFICATE-----\\n...",
            check=pem_certificates_check,
            max_length=65536,
        ),
        ConfigField(
            "batch_size", Kind.INT, "Records per request", 500, default=500, bounds=(1, 1000)
        ),
        ConfigField(
            "max_attempts", Kind.INT, "Attempts before a dead letter", 8, default=8, bounds=(1, 100)
        ),
        ConfigField(
            "batch_max_bytes",
            Kind.INT,
            "Bytes of records per request at most",
            1_000_000,
            default=1_000_000,
            bounds=(1024, 5_000_000),
        ),
        ConfigField(
            "batch_max_wait_ms",
            Kind.INT,
            "How long a partial batch waits for more records (alerts never wait)",
            200,
            default=200,
            bounds=(0, 10_000),
        ),
        ConfigField(
            "retry_initial_ms",
            Kind.INT,
            "First retry delay; doubles per attempt (with jitter) up to 30 s",
            500,
            default=500,
            bounds=(1, 60_000),
        ),
        ConfigField(
            "timeout_seconds",
            Kind.INT,
            "Connect and response timeout",
            5,
            default=5,
            bounds=(1, 60),
        ),
    ),
    rules=(_needs(_SIEM_NEEDS, "kind"),),
)

WAREHOUSE_PROVIDERS = ("duckdb", "postgres", "redshift", "snowflake", "bigquery")
_WAREHOUSE_NEEDS: dict[str, tuple[str, ...]] = {
    "duckdb": (),  # database_path defaults to a file under the data directory
    "postgres": ("host", "database", "user", "password"),
    "redshift": ("host", "database", "user", "password"),
    "snowflake": ("account", "user", "password", "database", "warehouse"),
    "bigquery": ("project", "dataset", "credentials_json"),
}


def _schedule_check(value: str) -> str | None:
    """`continuous` (follow the log) or a cron expression (five fields)."""
    if value == "continuous":
        return None
    from croniter import croniter  # noqa: PLC0415 - a pure library of the warehouse extra

    if len(value.split()) != 5 or not croniter.is_valid(value):
        return "must be continuous or a cron expression of five fields"
    return None


def _identifier_check(value: str) -> str | None:
    ok = value == "" or (value.replace("_", "a").isalnum() and value.isascii())
    return None if ok else "may hold only letters, digits and _"


DATA_WAREHOUSE = ConfigSchema(
    description="An analytics warehouse loaded incrementally from the event store.",
    fields=(
        _text("provider", "Which warehouse", "duckdb", required=True, choices=WAREHOUSE_PROVIDERS),
        _text(
            "database_path",
            "DuckDB: the database file (default: warehouses/<integration id>.duckdb under the "
            "data directory)",
            "/var/lib/acgs/warehouse.duckdb",
        ),
        _text("host", "PostgreSQL/Redshift: host", "acme.abc123.eu-west-1.redshift.amazonaws.com"),
        ConfigField(
            "port",
            Kind.INT,
            "PostgreSQL/Redshift: port (default 5432, Redshift 5439)",
            5439,
            bounds=(1, 65535),
        ),
        _text("database", "Database name", "analytics"),
        _text("user", "Database user", "acgs_loader"),
        _secret("password", "Database password", "wh-s3cret"),
        _text("account", "Snowflake: account identifier", "acme-xy12345"),
        _text("warehouse", "Snowflake: virtual warehouse", "LOAD_WH"),
        _text(
            "schema",
            "Target schema (default main, public, PUBLIC)",
            "acgs",
            check=_identifier_check,
        ),
        _text("project", "BigQuery: project id", "acme-analytics"),
        _text("dataset", "BigQuery: dataset", "acgs"),
        _secret(
            "credentials_json",
            "BigQuery: service-account key (JSON)",
            '{"type": "service_account", ...}',
        ),
        _text(
            "api_endpoint",
            "BigQuery: the API endpoint (default Google's; a private endpoint)",
            "https://bigquery.googleapis.com",
            check=HTTPS,
        ),
        _text(
            "schedule",
            "When to load: continuous (follow the log) or a cron expression",
            "*/15 * * * *",
            default="*/15 * * * *",
            check=_schedule_check,
        ),
        _text(
            "table_prefix",
            "Prefix of the tables written (governance_events, audit_log)",
            "acgs_",
            default="",
            check=_identifier_check,
        ),
        ConfigField(
            "timeout_seconds", Kind.INT, "Connect timeout", 10, default=10, bounds=(1, 120)
        ),
    ),
    rules=(_needs(_WAREHOUSE_NEEDS),),
)

SCHEMAS: dict[IntegrationType, ConfigSchema] = {
    IntegrationType.LDAP: LDAP,
    IntegrationType.SAML: SAML,
    IntegrationType.OAUTH: OAUTH,
    IntegrationType.OIDC: OIDC,
    IntegrationType.KAFKA: KAFKA,
    IntegrationType.SIEM: SIEM,
    IntegrationType.DATA_WAREHOUSE: DATA_WAREHOUSE,
}


def schema_of(integration_type: IntegrationType) -> ConfigSchema:
    return SCHEMAS[integration_type]
