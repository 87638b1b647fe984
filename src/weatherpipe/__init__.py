"""weatherpipe: weather observations from CSV through Kafka and a raw zone into PostgreSQL."""

__version__ = "0.1.0"
