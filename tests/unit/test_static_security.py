"""Static security checks of the code itself (no servers needed).

SQL is never built from strings, and signatures, MACs and tokens are compared in
constant time. Each checker has self-tests with known-bad and known-good snippets, so a
checker that silently stops finding anything fails too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


# --- Static checks: SQL built from strings, constant-time comparisons ------------------

# SQL statement shapes in the literal part of a dynamic string: upper-case keywords as the
# code base writes SQL, plus lower-case statements with an unmistakable shape.
_SQL = re.compile(
    r"\bSELECT\s+.+?\s+FROM\b|\bWHERE\s+\S+\s*(=|<|>|IN\b|LIKE\b)"
    r"|\bselect\s+(\*|[\w.]+(\s*,\s*[\w.]+)*)\s+from\s+[\w{]"
    r"|(?i:\bINSERT\s+INTO\b|\bUPDATE\s+\S+\s+SET\b|\bDELETE\s+FROM\b"
    r"|\b(DROP|CREATE|ALTER|TRUNCATE)\s+(TABLE|DATABASE|INDEX|SCHEMA)\b)",
    re.DOTALL,
)
# Calls that hand a string to the database as SQL.
_SQL_SINKS = {"text", "literal_column", "execute", "exec_driver_sql", "executemany",
              "executescript", "fetch", "fetchrow", "fetchval", "prepare"}
_LOG_CALLS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "log",
              "print"}


def _literal(node: ast.AST) -> str | None:
    """The literal text of a string built at run time, or None for anything else."""
    if isinstance(node, ast.JoinedStr):
        return "".join(
            v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else "{}"
            for v in node.values
        )
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        parts = [_literal(node.left), _literal(node.right)]
        for side in (node.left, node.right):
            if isinstance(side, ast.Constant) and isinstance(side.value, str):
                parts.append(side.value)
        text = " ".join(p for p in parts if p)
        return text or None
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
        and isinstance(node.func.value, ast.Constant)
        and isinstance(node.func.value.value, str)
    ):
        return node.func.value.value
    return None


def _call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def sql_from_strings(source: str, filename: str = "<string>") -> list[str]:
    """Places that build SQL text at run time (f-string, %, + or .format)."""
    tree = ast.parse(source, filename)
    in_log: set[int] = set()
    problems: list[str] = []
    for node in ast.walk(tree):
        # Messages (logs, exceptions) may mention SQL words; they never reach the database.
        name = _call_name(node) if isinstance(node, ast.Call) else ""
        if name in _LOG_CALLS or name.endswith(("Error", "Exception")):
            assert isinstance(node, ast.Call)
            in_log.update(id(sub) for arg in node.args for sub in ast.walk(arg))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _call_name(node) in _SQL_SINKS and node.args:
            first = node.args[0]
            # Anything but a constant string (or a SQLAlchemy construct passed by name)
            # given to a raw-SQL sink is dynamic SQL.
            if _literal(first) is not None:
                problems.append(f"{filename}:{node.lineno}: {_call_name(node)}() of a built string")
            continue
        if id(node) in in_log:
            continue
        text = _literal(node)
        is_dynamic = (isinstance(node, ast.JoinedStr) and any(
            isinstance(v, ast.FormattedValue) for v in node.values
        )) or not isinstance(node, ast.JoinedStr)
        if text is not None and is_dynamic and _SQL.search(text):
            problems.append(f"{filename}:{getattr(node, 'lineno', 0)}: SQL built from a string")
    return problems


def python_files(*roots: str) -> list[Path]:
    files = [p for root in roots for p in sorted((REPO / root).rglob("*.py"))]
    assert files, roots
    return files


def test_sql_checker_catches_string_built_sql() -> None:
    bad = [
        'session.execute(text(f"SELECT * FROM t WHERE id = {x}"))',
        'await conn.execute("DELETE FROM t WHERE id = %s" % key)',
        'query = "SELECT name FROM t WHERE k = \'{}\'".format(k)',
        "sql = 'UPDATE t SET a = 1 WHERE id = ' + ident",
        'await conn.exec_driver_sql(f"DROP TABLE {name}")',
        'stmt = f"insert into t values ({v})"',
        'q = f"select id, name from {table_name}"',
        'q = f"SELECT count(*) FROM {table_name} WHERE k = \'{k}\'"',
        'await conn.fetch("SELECT " + cols + " FROM t")',
    ]
    good = [
        'session.execute(text("SELECT 1"))',
        'log.info(f"deleted from {table}: {n} rows where id = {x}")',
        'raise ValueError(f"select a KPI from the catalog: {key}")',
        'detail = f"Select the KPIs from {department} where you own one"',
        'message = f"{n} events refused"',
        "session.execute(select(t).where(t.c.id == key))",
        'await conn.execute(text("SELECT 1 FROM t WHERE id = :id"), {"id": key})',
    ]
    for snippet in bad:
        assert sql_from_strings(snippet), f"not caught: {snippet}"
    for snippet in good:
        assert not sql_from_strings(snippet), f"false alarm: {snippet}"


def test_no_sql_is_built_from_strings() -> None:
    problems = [
        problem
        for path in python_files("services", "shared")
        for problem in sql_from_strings(
            path.read_text(encoding="utf-8"), str(path.relative_to(REPO))
        )
    ]
    assert not problems, "\n".join(problems)


# Names of values that hold a signature, MAC, digest, token or secret.
_SECRET_NAME = re.compile(r"sig|signature|digest|mac|token|secret|expected|given|hash|candidate",
                          re.IGNORECASE)
_CONSTANT_TIME_FILES = (
    "services/ingest/domain/signatures.py",
    "services/alerts/domain/payloads.py",
    "services/ingest/api/admin.py",
    "shared/auth.py",
)


def _names(node: ast.AST) -> set[str]:
    found: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            found.add(sub.id)
        elif isinstance(sub, ast.Attribute):
            found.add(sub.attr)
        elif isinstance(sub, ast.Call) and _call_name(sub) in {"sign", "digest", "hexdigest",
                                                                "_hmac_b64", "get_secret_value"}:
            found.add(_call_name(sub))
    return found


def timing_unsafe_comparisons(source: str, filename: str = "<string>") -> list[str]:
    """``==``/``!=``/``in`` on a secret-looking value, and secret checks without
    ``hmac.compare_digest``."""
    problems = []
    tree = ast.parse(source, filename)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        if not any(isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn) for op in node.ops):
            continue
        operands = [node.left, *node.comparators]
        # Comparing with a constant (None, "", a literal prefix) leaks nothing secret.
        if any(isinstance(o, ast.Constant) for o in operands) and len(operands) == 2:
            continue
        names = set().union(*(_names(o) for o in operands))
        secretish = sorted(n for n in names if _SECRET_NAME.search(n))
        if secretish:
            problems.append(
                f"{filename}:{node.lineno}: {ast.unparse(node)} compares {secretish} "
                "without hmac.compare_digest"
            )
    return problems


def uses_compare_digest(source: str) -> bool:
    tree = ast.parse(source)
    return any(
        isinstance(node, ast.Attribute) and node.attr == "compare_digest"
        for node in ast.walk(tree)
    )


def test_constant_time_checker_catches_plain_comparisons() -> None:
    bad = [
        "if signature == expected: ok = True",
        "return sign(body, secret) == header",
        "if given in expected_signatures: ok = True",
        "if hmac.new(k, m, sha256).hexdigest() != provided: fail()",
        "if token != settings.admin_token.get_secret_value(): raise E",
    ]
    for snippet in bad:
        assert timing_unsafe_comparisons(snippet), f"not caught: {snippet}"
    good = [
        "if not hmac.compare_digest(sign(body, secret), header): fail()",
        'if not timestamp or signature is None: return MISSING',
        'if part.startswith("v1,"): pass',
        "if scheme.lower() != 'bearer': fail()",
    ]
    for snippet in good:
        assert not timing_unsafe_comparisons(snippet), f"false alarm: {snippet}"


@pytest.mark.parametrize("relative", _CONSTANT_TIME_FILES)
def test_signatures_and_tokens_are_compared_in_constant_time(relative: str) -> None:
    source = (REPO / relative).read_text(encoding="utf-8")
    assert uses_compare_digest(source), f"{relative} never calls hmac.compare_digest"
    problems = timing_unsafe_comparisons(source, relative)
    assert not problems, "\n".join(problems)


def test_every_hmac_verifier_goes_through_compare_digest() -> None:
    """Each verify_* function with an HMAC reaches hmac.compare_digest (directly or via
    the module's helper); SendGrid's ECDSA check is cryptography's ``verify``."""
    for relative in ("services/ingest/domain/signatures.py", "services/alerts/domain/payloads.py"):
        tree = ast.parse((REPO / relative).read_text(encoding="utf-8"))
        functions = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        constant_time = {
            name for name, fn in functions.items()
            if any(isinstance(s, ast.Attribute) and s.attr == "compare_digest"
                   for s in ast.walk(fn))
        }
        verifiers = [name for name in functions if name.startswith("verify")]
        assert verifiers, relative
        for name in verifiers:
            called = {_call_name(c) for c in ast.walk(functions[name]) if isinstance(c, ast.Call)}
            assert name in constant_time or called & (constant_time | {"verify"}), (
                f"{relative}: {name} compares without hmac.compare_digest (calls {sorted(called)})"
            )
