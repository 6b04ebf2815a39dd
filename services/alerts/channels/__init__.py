"""Adapters that hand a rendered notification to an external system."""
