"""Inbound entry points from the event streams (Kafka consumers that call commands), beside the
HTTP API and the CLI; and the AsyncAPI document of the topics."""
