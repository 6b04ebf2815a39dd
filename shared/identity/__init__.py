"""People and access: users, roles, groups, personal tokens, page sessions, KPI visibility."""
