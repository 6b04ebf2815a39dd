"""HTTP API of the scoring service."""
