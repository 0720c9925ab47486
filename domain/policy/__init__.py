"""Legacy policy migration: parsers of the legacy formats, analysis, Rego generator, the gate."""
