"""LDAP directories (ldap3): connections with TLS, CA and timeouts, and the connectivity check."""
