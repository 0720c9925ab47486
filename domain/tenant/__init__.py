"""The Tenant aggregate and its values."""
