"""Derived KPIs: values computed from other KPIs' values by an arithmetic expression.

``formula: {derived: "revenue / deals_closed"}`` — the names are KPI keys. Allowed:
numbers, KPI keys, ``+ - * /``, unary minus, parentheses, and ``previous(key)``: that
KPI's value over the derived KPI's *previous review period* (a calendar period, the same
value the period analysis shows), so growth against the previous period is
``(revenue - previous(revenue)) / previous(revenue)``. ``previous`` takes a computed or
reported KPI (not a derived one). Anything else (attributes, calls, comparisons,
``**``) is refused when the catalog is checked, naming the expression.

The expression is evaluated by ``simpleeval`` (a maintained safe evaluator, never
``eval``) after this module checked its shape. A derived KPI has no data while any
input has none, and when it divides by zero.

Catalog rules (errors name the KPI): every name must be a KPI of the catalog; KPIs may
not derive from themselves, directly or through others (the cycle is named); and units
must agree: both sides of ``+`` and ``-`` have the same unit, and a result with a plain
unit (``revenue - cost``: USD) must be the derived KPI's own unit. A product or quotient
of different units (USD per deal) is not checked against the KPI's unit.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Final

from simpleeval import SimpleEval

if TYPE_CHECKING:
    from services.scoring.domain.catalog import KpiDefinition

PREVIOUS: Final = "previous"
# Rewritten names for ``previous(key)``: no KPI key starts with "_", so none collides.
_PREVIOUS_PREFIX: Final = "_previous_"
_OPERATORS: Final = (ast.Add, ast.Sub, ast.Mult, ast.Div)
MAX_EXPRESSION_CHARS: Final = 500


class ExpressionError(ValueError):
    """A derived KPI's expression that is not allowed (the message says what)."""


@dataclass(frozen=True, slots=True)
class Expression:
    """A checked expression: its text, the KPIs it reads now and over the last period."""

    text: str
    current: frozenset[str]
    previous: frozenset[str]
    rewritten: str  # ``previous(x)`` as a plain name, for the evaluator

    @property
    def inputs(self) -> frozenset[str]:
        return self.current | self.previous


@cache
def parse_expression(text: str) -> Expression:
    """Check ``text`` and list its inputs; raises ``ExpressionError``."""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(f"longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"{text!r} is not an expression: {exc.msg}") from None
    current: set[str] = set()
    previous: set[str] = set()
    rewritten = _check(tree.body, text, current, previous)
    return Expression(text, frozenset(current), frozenset(previous), ast.unparse(rewritten))


def _check(node: ast.expr, text: str, current: set[str], previous: set[str]) -> ast.expr:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node
    if isinstance(node, ast.Name):
        current.add(node.id)
        return node
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        return ast.UnaryOp(node.op, _check(node.operand, text, current, previous))
    if isinstance(node, ast.BinOp) and isinstance(node.op, _OPERATORS):
        return ast.BinOp(
            _check(node.left, text, current, previous),
            node.op,
            _check(node.right, text, current, previous),
        )
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == PREVIOUS
        and len(node.args) == 1
        and not node.keywords
        and isinstance(node.args[0], ast.Name)
    ):
        previous.add(node.args[0].id)
        return ast.Name(_PREVIOUS_PREFIX + node.args[0].id, ast.Load())
    part = ast.unparse(node)
    raise ExpressionError(
        f"{part!r} is not allowed in {text!r}: use numbers, KPI keys, + - * /, "
        "parentheses and previous(kpi_key)"
    )


def evaluate_expression(
    expression: Expression,
    current: Mapping[str, float | None],
    previous: Mapping[str, float | None],
) -> float | None:
    """The value, or None when an input has no value or a division is by zero."""
    names: dict[str, Any] = {}
    for key in expression.current:
        value = current.get(key)
        if value is None:
            return None
        names[key] = value
    for key in expression.previous:
        value = previous.get(key)
        if value is None:
            return None
        names[_PREVIOUS_PREFIX + key] = value
    try:
        result = SimpleEval(names=names, functions={}).eval(expression.rewritten)
    except ZeroDivisionError:
        return None
    return float(result)


# --- catalog rules --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DerivedInfo:
    """What the catalog rules need of a KPI."""

    key: str
    unit: str
    expression: Expression | None  # None: not derived


def derived_problems(kpis: Iterable[KpiDefinition]) -> list[str]:
    """Unknown inputs, cycles and unit mismatches, each naming the KPI."""
    by_key = {k.key: DerivedInfo(k.key, k.unit, k.formula.expression) for k in kpis}
    problems: list[str] = []
    for kpi in by_key.values():
        if kpi.expression is None:
            continue
        where = f"kpi '{kpi.key}': formula.derived"
        unknown = sorted(kpi.expression.inputs - by_key.keys())
        problems.extend(f"{where}: unknown KPI {name!r}" for name in unknown)
        for name in sorted(kpi.expression.previous & by_key.keys()):
            if by_key[name].expression is not None:
                problems.append(f"{where}: previous({name}) needs a computed or reported KPI")
        if unknown:
            continue
        try:
            unit = _unit(ast.parse(kpi.expression.text.strip(), mode="eval").body, by_key)
        except ExpressionError as exc:
            problems.append(f"{where}: {exc}")
        else:
            if unit is not None and unit != kpi.unit:
                problems.append(f"{where}: the expression is in {unit!r}, the KPI in {kpi.unit!r}")
    problems.extend(_cycles(by_key))
    return problems


def _unit(node: ast.expr, by_key: Mapping[str, DerivedInfo]) -> str | None:
    """The unit of ``node``: a KPI's unit, None for a pure number, or raises when a sum or
    difference mixes units. Products and quotients are dimensionless to this check."""
    if isinstance(node, ast.Name):
        return by_key[node.id].unit
    if isinstance(node, ast.Call):
        arg = node.args[0]
        return by_key[arg.id].unit if isinstance(arg, ast.Name) else None
    if isinstance(node, ast.UnaryOp):
        return _unit(node.operand, by_key)
    if isinstance(node, ast.BinOp):
        left, right = _unit(node.left, by_key), _unit(node.right, by_key)
        if isinstance(node.op, ast.Add | ast.Sub):
            if left is not None and right is not None and left != right:
                raise ExpressionError(
                    f"units differ in {ast.unparse(node)!r}: {left!r} and {right!r}"
                )
            return left if left is not None else right
        return None
    return None


def _cycles(by_key: Mapping[str, DerivedInfo]) -> list[str]:
    problems: list[str] = []
    reported: set[frozenset[str]] = set()

    def visit(key: str, path: list[str]) -> None:
        info = by_key.get(key)
        if info is None or info.expression is None:
            return
        if key in path:
            loop = [*path[path.index(key):], key]
            if frozenset(loop) not in reported:
                reported.add(frozenset(loop))
                problems.append(
                    f"kpi '{loop[0]}': formula.derived: cycle {' -> '.join(loop)}"
                )
            return
        for name in sorted(info.expression.inputs):
            visit(name, [*path, key])

    for key in by_key:
        visit(key, [])
    return problems


def evaluation_order(by_key: Mapping[str, Expression | None], wanted: Iterable[str]) -> list[str]:
    """The derived KPIs among ``wanted`` and the derived KPIs they read, inputs first
    (the catalog has no cycles)."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(key: str) -> None:
        expression = by_key.get(key)
        if key in seen or expression is None:
            return
        seen.add(key)
        for name in sorted(expression.inputs):
            visit(name)
        order.append(key)

    for key in wanted:
        visit(key)
    return order
