"""kpipulse simulate: a realistic stream of events through the real HTTP API."""
