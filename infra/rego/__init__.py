"""The Rego engine adapter: regorus (embedded) and `opa check --strict` when an `opa` binary exists."""
