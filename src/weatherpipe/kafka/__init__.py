"""Thin, typed wrappers over confluent-kafka; application logic lives elsewhere."""
