"""Pure scoring logic: the KPI catalog, formulas, additive bucket aggregates, evaluation,
scores and scorecards, lead/lag analysis and calendar review periods.

Nothing in this package performs I/O; the scoring service's handlers and repositories
wrap it. Import from the submodules (``catalog``, ``formulas``, ``aggregates``,
``evaluate``, ``scoring``, ``leadlag``, ``periods``, ``durations``).
"""
