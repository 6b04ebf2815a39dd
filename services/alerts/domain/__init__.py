"""Pure alerting logic: conditions, the alert lifecycle, rendering and retry policy.

Nothing here does I/O; callers pass in clocks, values and random numbers.
"""
