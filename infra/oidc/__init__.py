"""OpenID Connect and OAuth providers (httpx): discovery and JWKS."""
