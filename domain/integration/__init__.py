"""Enterprise integrations: the aggregate, the configuration schema of each type (which fields
are secret), and the values they use."""
