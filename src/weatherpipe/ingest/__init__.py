"""From the weather CSV to Kafka: reading, validation, JSON encoding, the produce loop."""
