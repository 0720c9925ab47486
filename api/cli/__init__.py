"""The `acgs` command line: one module per command group."""
