"""Legacy policy migration: parsers of the four legacy formats, analysis, the Rego generator and the gate."""
