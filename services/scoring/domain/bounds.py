"""The sizes of a KPI definition's free-text fields and lists.

Every string and list of a definition is bounded: a definition is stored, copied into
every value message scoring publishes and into every page and API answer that shows it.
The key, the name and the owners are bounded by the value message contract
(``shared/contracts/kpi_values.py``), since they end in alerts' tables; the fields here
by what a person writes in them.
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import StringConstraints

from shared.contracts.text import PROSE, SINGLE_LINE

Objective = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000), PROSE
]
DataCollection = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000), PROSE
]
Department = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), SINGLE_LINE
]
Unit = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50), SINGLE_LINE
]
Role = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), SINGLE_LINE
]
MAX_VIEWERS: Final = 50
