"""The safe formula language: arithmetic over tensors with a fixed list of functions.

A formula is parsed with ``ast.parse(mode="eval")``, checked against a whitelist of node types,
and interpreted node by node here; nothing is ever passed to ``eval``/``exec``. Every
allocation is sized before it happens (``numel_budget``), so a formula cannot exhaust memory,
and powers of plain numbers never build giant integers, so none can hang. The functions and
operators live in :mod:`paramedit.core.editing.expression_functions`.
"""

from __future__ import annotations

import ast
import math
import re
import warnings
from collections.abc import Callable, Mapping
from functools import partial

import torch

from paramedit.core.editing.expression_functions import (
    FUNCTION_TABLE,
    FUNCTIONS,
    SIGNATURES,
    EvalContext,
    binop,
    is_number,
    to_tensor,
)
from paramedit.core.errors import ExpressionError

__all__ = ["FUNCTIONS", "MAX_DEPTH", "MAX_TEXT", "Expression", "evaluate_expression", "parse_expression"]

MAX_TEXT = 2000
MAX_DEPTH = 50
_CONSTANTS = {"pi": math.pi, "e": math.e, "inf": math.inf, "nan": math.nan}
_TORCH_ERRORS = (RuntimeError, ValueError, TypeError, OverflowError, IndexError, ZeroDivisionError, MemoryError)

_AST_OPS = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
    ast.Pow: "**", ast.MatMult: "@", ast.BitAnd: "&", ast.BitOr: "|", ast.Eq: "==", ast.NotEq: "!=",
    ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
}  # fmt: skip


# --- parsing ------------------------------------------------------------------------------------


class _Positions:
    """Turns AST (line, UTF-8 byte column) pairs into 0-based character offsets in the text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines: list[tuple[int, str]] = []  # (offset of the line's start, the line)
        start = 0
        for match in re.finditer(r"[^\r\n]*(\r\n|\r|\n|$)", text):
            line = match.group(0).rstrip("\r\n")
            self.lines.append((start, line))
            start = match.end()
            if not match.group(1):
                break

    def char(self, lineno: int | None, col: int | None, *, byte_col: bool = True) -> int:
        if not lineno or col is None or lineno > len(self.lines):
            return 0
        start, line = self.lines[lineno - 1]
        if byte_col:
            col = len(line.encode("utf-8")[:col].decode("utf-8", "ignore"))
        return max(0, min(start + col, len(self.text)))

    def node(self, node: ast.AST) -> int:
        return self.char(getattr(node, "lineno", None), getattr(node, "col_offset", None))


_REFUSED = {
    ast.Attribute: "attribute access (such as x.data) is not allowed",
    ast.Subscript: "indexing with [] is not allowed in formulas; choose the region to edit instead",
    ast.Lambda: "lambda is not allowed",
    ast.ListComp: "comprehensions are not allowed", ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed", ast.GeneratorExp: "comprehensions are not allowed",
    ast.JoinedStr: "strings (including f-strings) are not allowed",
    ast.NamedExpr: "assignment (:=) is not allowed",
    ast.Starred: "starred (*) arguments are not allowed",
    ast.BoolOp: "'and'/'or' are not allowed; use & and | with parentheses: (x > 0) & (x < 1)",
    ast.Dict: "dictionaries are not allowed", ast.Set: "sets are not allowed",
}  # fmt: skip
_OP_HINTS = {
    ast.BitXor: "^ is not allowed; for powers use **",
    ast.LShift: "<< is not allowed", ast.RShift: ">> is not allowed",
    ast.Is: "'is' is not allowed; use ==", ast.IsNot: "'is not' is not allowed; use !=",
    ast.In: "'in' is not allowed", ast.NotIn: "'not in' is not allowed",
}  # fmt: skip


class _Checker:
    """Walks the tree once, refusing everything outside the whitelist and collecting names."""

    def __init__(self, positions: _Positions) -> None:
        self.pos = positions
        self.names: set[str] = set()

    def fail(self, message: str, node: ast.AST) -> None:
        raise ExpressionError(message, position=self.pos.node(node))

    def check(self, node: ast.AST, depth: int = 0) -> None:
        if depth > MAX_DEPTH:
            self.fail(f"the formula is nested too deeply (more than {MAX_DEPTH} levels)", node)
        if type(node) in _REFUSED:
            if isinstance(node, ast.Attribute):  # point at the attribute, not at the object
                end = self.pos.char(node.end_lineno, node.end_col_offset)
                raise ExpressionError(_REFUSED[ast.Attribute], position=max(0, end - len(node.attr)))
            self.fail(_REFUSED[type(node)], node)
        if isinstance(node, ast.Constant):
            if isinstance(node.value, (str, bytes)):
                self.fail("strings are not allowed", node)
            if not isinstance(node.value, (bool, int, float)):
                self.fail(f"{node.value!r} is not allowed; use numbers", node)
        elif isinstance(node, ast.Name):
            self._name(node)
        elif isinstance(node, (ast.UnaryOp, ast.BinOp, ast.Compare)):
            for op in getattr(node, "ops", [getattr(node, "op", None)]):
                if type(op) in _OP_HINTS:
                    self.fail(_OP_HINTS[type(op)], node)
            for child in ast.iter_child_nodes(node):
                if not isinstance(child, (ast.operator, ast.unaryop, ast.cmpop)):
                    self.check(child, depth + 1)
        elif isinstance(node, (ast.IfExp, ast.Tuple, ast.List)):
            for child in ast.iter_child_nodes(node):
                if not isinstance(child, ast.expr_context):
                    self.check(child, depth + 1)
        elif isinstance(node, ast.Call):
            self._call(node, depth)
        else:
            self.fail(f"{type(node).__name__} is not allowed in a formula", node)

    def _name(self, node: ast.Name) -> None:
        if "__" in node.id:
            self.fail(f"names with double underscores ({node.id}) are not allowed", node)
        if node.id in FUNCTIONS:
            self.fail(f"{node.id} is a function; call it, e.g. {node.id}(x)", node)
        if node.id not in _CONSTANTS:
            self.names.add(node.id)

    def _call(self, node: ast.Call, depth: int) -> None:
        func = node.func
        if not isinstance(func, ast.Name):
            self.fail("only the listed functions can be called, by name, e.g. abs(x)", func)
        if func.id not in FUNCTIONS:
            self.fail(f"{func.id}() is not an allowed function; allowed: {', '.join(sorted(FUNCTIONS))}", func)
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                self.fail(_REFUSED[ast.Starred], arg)
        for kw in node.keywords:
            if kw.arg is None:
                self.fail("** arguments are not allowed", kw)
        try:  # arity and keyword names are known now, so report them before anything runs
            SIGNATURES[func.id].bind(*node.args, **{kw.arg: kw.value for kw in node.keywords})
        except TypeError as exc:
            bad = [kw for kw in node.keywords if kw.arg not in SIGNATURES[func.id].parameters]
            hint = " (for elementwise use minimum/maximum)" if func.id in ("min", "max") else ""
            where = bad[0] if bad else node
            self.fail(f"{func.id}(): {exc}{hint}; signature {func.id}{SIGNATURES[func.id]}", where)
        for child in [*node.args, *(kw.value for kw in node.keywords)]:
            self.check(child, depth + 1)


def _syntax_error(text: str, exc: SyntaxError, positions: _Positions) -> ExpressionError:
    try:  # a statement does not parse in eval mode; say what it is rather than "invalid syntax"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = ast.parse(text, mode="exec")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        module = None
    if module is not None and module.body:
        stmt = module.body[0]
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            message = "imports are not allowed in formulas"
        elif isinstance(stmt, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            message = "assignments are not allowed; a formula is one expression, such as x * 2"
        else:
            message = "a formula is a single expression (no statements or several lines)"
        return ExpressionError(message, position=positions.node(stmt))
    if exc.offset:
        position = positions.char(exc.lineno, exc.offset - 1, byte_col=False)
    else:  # CPython reports offset 0 when the text ended too early ("1 +")
        position = len(text.rstrip())
    return ExpressionError(f"syntax error: {exc.msg}", position=position)


class Expression:
    """A parsed, immutable formula. Build it with :func:`parse_expression`."""

    __slots__ = ("_positions", "_tree", "names", "text")
    text: str
    names: frozenset[str]

    def __init__(self, text: str, tree: ast.Expression, names: frozenset[str], positions: _Positions) -> None:
        for slot, value in zip(self.__slots__, (positions, tree, names, text), strict=True):
            object.__setattr__(self, slot, value)

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError("Expression is immutable")

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Expression) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def evaluate(
        self,
        variables: Mapping[str, torch.Tensor | float] | None = None,
        *,
        numel_budget: int = 10_000_000,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ) -> torch.Tensor | float | int | bool:
        """Compute the formula; raise :class:`ExpressionError` (with ``position``) on any problem.

        No intermediate may exceed ``numel_budget`` elements (raised to the largest variable's
        size, so plain arithmetic on the variables always fits). Constructors and random
        functions produce ``dtype`` (random ones a floating dtype; ``randint`` gives int64) on
        ``device``, drawing from ``generator``.
        """
        variables = dict(variables or {})
        for name, value in variables.items():
            if not isinstance(value, torch.Tensor) and not is_number(value):
                raise ExpressionError(f"variable {name!r} must be a tensor or a number, got {type(value).__name__}")
        sizes = [v.numel() for v in variables.values() if isinstance(v, torch.Tensor)]
        ctx = EvalContext(
            budget=max([numel_budget, *sizes]),
            generator=generator,
            dtype=dtype,
            float_dtype=dtype if dtype.is_floating_point else torch.float32,
            device=torch.device(device),
        )
        result = _Evaluator(ctx, variables, self._positions).eval(self._tree.body)
        if isinstance(result, tuple):
            result = self._guard(lambda: to_tensor(result, ctx), self._tree.body)
        return result

    def _guard(self, fn: Callable, node: ast.AST):
        return _Evaluator.guard(self._positions.node(node), fn)


class _Evaluator:
    def __init__(self, ctx: EvalContext, variables: dict, positions: _Positions) -> None:
        self.ctx, self.variables, self.pos = ctx, variables, positions

    @staticmethod
    def guard(position: int, fn: Callable):
        """Run fn, turning any error into an ExpressionError at ``position``."""
        try:
            return fn()
        except ExpressionError as exc:
            if exc.position is None:
                exc.position = position
            raise
        except _TORCH_ERRORS as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ExpressionError(first, position=position, details=str(exc)) from None

    def eval(self, node: ast.expr):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, (ast.Tuple, ast.List)):
            values = tuple(self.eval(e) for e in node.elts)
            if not all(is_number(v) or isinstance(v, tuple) for v in values):
                raise ExpressionError("lists and tuples may only hold numbers", position=self.pos.node(node))
            return values
        if isinstance(node, ast.IfExp):
            cond = self.eval(node.test)
            if not isinstance(cond, (torch.Tensor, tuple)):
                return self.eval(node.body if cond else node.orelse)
            a, b = self.eval(node.body), self.eval(node.orelse)
            return self.guard(self.pos.node(node), lambda: FUNCTION_TABLE["where"](self.ctx, cond, a, b))
        if isinstance(node, ast.UnaryOp):
            value = self.eval(node.operand)
            return self.guard(self.pos.node(node), lambda: self._unary(node.op, value))
        if isinstance(node, ast.BinOp):
            a, b = self.eval(node.left), self.eval(node.right)
            return self.guard(self.pos.node(node), lambda: binop(self.ctx, _AST_OPS[type(node.op)], a, b))
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.Call):
            args = [self.eval(a) for a in node.args]
            kwargs = {kw.arg: self.eval(kw.value) for kw in node.keywords}
            fn = FUNCTION_TABLE[node.func.id]
            return self.guard(self.pos.node(node), lambda: fn(self.ctx, *args, **kwargs))
        raise ExpressionError(f"{type(node).__name__} is not allowed", position=self.pos.node(node))

    def _name(self, node: ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        if node.id in self.variables:
            return self.variables[node.id]
        known = ", ".join(sorted(self.variables)) or "none"
        raise ExpressionError(
            f"unknown name {node.id!r}; known variables: {known}; constants: {', '.join(_CONSTANTS)}",
            position=self.pos.node(node),
        )

    def _unary(self, op: ast.unaryop, value):
        value = to_tensor(value, self.ctx)
        if isinstance(op, ast.USub):
            return -value
        if isinstance(op, ast.UAdd):
            return +value
        # `not` and `~` are both logical negation on booleans; `~` stays bitwise on integers.
        if isinstance(value, torch.Tensor):
            if isinstance(op, ast.Not) or value.dtype == torch.bool:
                return torch.logical_not(value)
            if value.is_floating_point():
                raise ExpressionError("~ needs booleans or integers")
            return torch.bitwise_not(value)
        if isinstance(op, ast.Not) or isinstance(value, bool):
            return not value
        if isinstance(value, float):
            raise ExpressionError("~ needs booleans or integers")
        return ~value

    def _compare(self, node: ast.Compare):
        # Chains (a < b < c) evaluate each operand once and combine the parts with &.
        position = self.pos.node(node)
        left = self.eval(node.left)
        result = None
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self.eval(right_node)
            part = self.guard(position, partial(binop, self.ctx, _AST_OPS[type(op)], left, right))
            result = part if result is None else self.guard(position, partial(binop, self.ctx, "&", result, part))
            left = right
        return result


def parse_expression(text: str) -> Expression:
    """Parse a formula; raise :class:`ExpressionError` with ``position`` (0-based) on any problem."""
    if not isinstance(text, str):
        raise ExpressionError(f"a formula must be text, got {type(text).__name__}", position=0)
    if not text.strip():
        raise ExpressionError("the formula is empty", position=0)
    if len(text) > MAX_TEXT:
        raise ExpressionError(f"the formula is longer than {MAX_TEXT} characters", position=MAX_TEXT)
    positions = _Positions(text)
    try:
        with warnings.catch_warnings():  # escapes etc. warn at parse time; we only read the tree
            warnings.simplefilter("ignore")
            tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise _syntax_error(text, exc, positions) from None
    except (ValueError, MemoryError, RecursionError):
        raise ExpressionError("the formula could not be parsed (too complex)", position=0) from None
    checker = _Checker(positions)
    checker.check(tree.body)
    return Expression(text, tree, frozenset(checker.names), positions)


def evaluate_expression(text: str, variables: Mapping[str, torch.Tensor | float] | None = None, **kw):
    """Parse and evaluate ``text``; keyword arguments as for :meth:`Expression.evaluate`."""
    return parse_expression(text).evaluate(variables, **kw)
