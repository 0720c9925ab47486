"""SAML identity providers: metadata parsed safely (defusedxml), certificates checked."""
