"""The Rego engine adapter: regorus (embedded), and `opa check --strict` when `opa` is on PATH."""
