"""Key providers behind `domain.keys.KeyProvider` (a local key file, Vault/OpenBao transit) and
the envelope sealer that encrypts integration secrets with data keys they wrap."""
