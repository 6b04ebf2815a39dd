"""The message bus port and its adapters (Kafka; the embedded log lives beside it)."""
