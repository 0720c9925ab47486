"""SIEM sinks: each a follower of the event log feeding one receiver (see runner.py)."""
