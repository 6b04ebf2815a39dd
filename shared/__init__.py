"""KPI Pulse's common package: contracts, settings and adapters shared by the services."""
