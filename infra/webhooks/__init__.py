"""Webhook deliveries: the SSRF guard that resolves and checks a target (`resolver`) and the
sender and sink that POST signed events to the checked address (`sender`)."""
