"""The alerts HTTP API: reads are open, changes need the admin token."""
