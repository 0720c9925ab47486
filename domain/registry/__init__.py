"""The tenant policy registry: policies with immutable versions, one active, and decisions."""
