"""The safe formula language: right answers, refused constructs with positions, bounded cost."""

from __future__ import annotations

import math
import time

import pytest
import torch

from paramedit.core.editing import expression_functions
from paramedit.core.editing.expressions import FUNCTIONS, Expression, evaluate_expression, parse_expression
from paramedit.core.errors import ExpressionError

X = torch.tensor([[-2.0, -0.5, 0.0], [0.5, 1.5, 3.0]])
X64 = X.to(torch.float64)


def run(text, x=X, **kw):
    return evaluate_expression(text, {"x": x}, **kw)


TENSOR_CASES = [
    ("x * 2 + 1", lambda x: x * 2 + 1),
    ("-x", lambda x: -x),
    ("+x", lambda x: x),
    ("x - 1 / 3", lambda x: x - 1 / 3),
    ("x / 2", lambda x: x / 2),
    ("x // 1", lambda x: torch.floor_divide(x, 1)),
    ("x % 1", lambda x: torch.remainder(x, 1)),
    ("x ** 2", lambda x: x**2),
    ("2 ** x", lambda x: 2**x),
    ("x @ transpose(x, 0, 1)", lambda x: x @ x.T),
    ("x > 0", lambda x: x > 0),
    ("x == 0", lambda x: x == 0),
    ("x != 0", lambda x: x != 0),
    ("-1 <= x < 1", lambda x: (x >= -1) & (x < 1)),
    ("(x > 0) & (x < 2)", lambda x: (x > 0) & (x < 2)),
    ("(x > 1) | (x < -1)", lambda x: (x > 1) | (x < -1)),
    ("~(x > 0)", lambda x: ~(x > 0)),
    ("not (x > 0)", lambda x: ~(x > 0)),
    ("x if x > 0 else 0", lambda x: torch.where(x > 0, x, 0.0)),
    ("where(x > 0, x, -x)", lambda x: torch.where(x > 0, x, -x)),
    ("abs(x)", torch.abs),
    ("clamp(x, -1, 1)", lambda x: torch.clamp(x, -1, 1)),
    ("clamp(x, min=0)", lambda x: torch.clamp(x, min=0)),
    ("clamp(x, max=0.5)", lambda x: torch.clamp(x, max=0.5)),
    ("clamp(x, zeros(3), 1)", lambda x: torch.clamp(x, min=torch.zeros(3), max=torch.ones(3))),
    ("clamp(x, 2, 1)", lambda x: torch.clamp(x, 2, 1)),
    ("abs(x > 0)", lambda x: (x > 0).to(torch.int64)),
    ("x @ [1, 2, 3]", lambda x: x @ torch.tensor([1.0, 2.0, 3.0])),
    ("sign(x)", torch.sign),
    ("sqrt(abs(x))", lambda x: torch.sqrt(torch.abs(x))),
    ("exp(x)", torch.exp),
    ("log(abs(x) + 1)", lambda x: torch.log(torch.abs(x) + 1)),
    ("log2(abs(x) + 1)", lambda x: torch.log2(torch.abs(x) + 1)),
    ("log10(abs(x) + 1)", lambda x: torch.log10(torch.abs(x) + 1)),
    ("sin(x) + cos(x) + tan(x)", lambda x: torch.sin(x) + torch.cos(x) + torch.tan(x)),
    ("tanh(x)", torch.tanh),
    ("sigmoid(x)", torch.sigmoid),
    ("relu(x)", torch.relu),
    ("minimum(x, 0.25)", lambda x: torch.clamp(x, max=0.25)),
    ("maximum(x, transpose(flip(transpose(x, 0, 1), 0), 0, 1))", lambda x: torch.maximum(x, x.flip(1))),
    ("floor(x) + ceil(x)", lambda x: torch.floor(x) + torch.ceil(x)),
    ("round(x)", torch.round),
    ("round(x * 1.2345, decimals=2)", lambda x: torch.round(x * 1.2345, decimals=2)),
    ("mean(x)", torch.mean),
    ("sum(x)", torch.sum),
    ("min(x)", torch.min),
    ("max(x)", torch.max),
    ("std(x)", torch.std),
    ("norm(x)", torch.linalg.vector_norm),
    ("x - mean(x)", lambda x: x - x.mean()),
    ("zeros_like(x)", torch.zeros_like),
    ("ones_like(x) * 3", lambda x: torch.ones_like(x) * 3),
    ("reshape(x, 3, 2)", lambda x: x.reshape(3, 2)),
    ("reshape(x, (-1,))", lambda x: x.reshape(-1)),
    ("transpose(x, 0, 1)", lambda x: x.T),
    ("flip(x, 1)", lambda x: x.flip(1)),
    ("flip(x, (0, 1))", lambda x: x.flip((0, 1))),
    ("int(x)", lambda x: x.to(torch.int64)),
    ("float(int(x))", lambda x: x.to(torch.int64).to(torch.float32)),
    ("x * pi + e", lambda x: x * math.pi + math.e),
    ("x + [1, 2, 3]", lambda x: x + torch.tensor([1.0, 2.0, 3.0])),
]


@pytest.mark.parametrize(("text", "reference"), TENSOR_CASES)
def test_tensor_results_equal_torch(text, reference):
    result = run(text)
    expected = reference(X)
    assert isinstance(result, torch.Tensor)
    assert result.shape == expected.shape
    assert result.dtype == expected.dtype
    torch.testing.assert_close(result, expected, equal_nan=True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 + 2", 3),
        ("2 ** 10", 1024),
        ("2 ** 62", 2**62),
        ("7 // 2", 3),
        ("-7 // 2", -4),
        ("-7 % 3", 2),
        ("7 / 2", 3.5),
        ("2 ** -1", 0.5),
        ("True + True", 2),
        ("1 < 2 < 3", True),
        ("1 < 3 < 2", False),
        ("not False", True),
        ("~True", False),
        ("(1 < 2) & (2 < 1)", False),
        ("6 & 3", 2),
        ("6 | 3", 7),
        ("5 if 1 > 0 else 6", 5),
        ("sqrt(4)", 2.0),
        ("abs(-3)", 3),
        ("clamp(5, 0, 1)", 1),
        ("clamp(5, 0.5, 1.5)", 1.5),
        ("maximum(1, 2)", 2),
        ("minimum(1.5, 2)", 1.5),
        ("float(3)", 3.0),
        ("int(2.7)", 2),
        ("int(-2.7)", -2),
        ("pi", math.pi),
        ("e", math.e),
        ("inf", math.inf),
        ("-inf", -math.inf),
        ("1 / 0", math.inf),
        ("-1 / 0", -math.inf),
        ("2.0 // 0", math.inf),
        ("log(0)", -math.inf),
        ("sigmoid(0)", 0.5),
        ("1e308 * 10", math.inf),
        ("10 ** 400", math.inf),
    ],
)
def test_scalar_results(text, expected):
    result = evaluate_expression(text)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize("text", ["nan", "0 / 0", "(-8) ** (1 / 3)", "sqrt(-1)", "inf - inf", "clamp(nan, 0, 1)"])
def test_scalar_nan_results(text):
    result = evaluate_expression(text)
    assert isinstance(result, float) and math.isnan(result)


def test_std_of_one_element_is_nan_without_a_warning(recwarn):
    assert math.isnan(float(evaluate_expression("std([1.5])")))
    assert len(recwarn) == 0


@pytest.mark.parametrize("text", ["10**10**10", "9**9**9**9", "(-10)**10**10", "2**2**2**2**2**2", "10**-10**10", "99999999999**99999999999"])
def test_giant_powers_answer_instantly(text):
    start = time.perf_counter()
    result = evaluate_expression(text)
    assert time.perf_counter() - start < 0.5
    assert isinstance(result, float)


def test_int_powers_beyond_int64_become_floats():
    assert evaluate_expression("2 ** 63") == 2.0**63
    assert isinstance(evaluate_expression("2 ** 63"), float)
    assert evaluate_expression("(-2) ** 63") == -(2**63)


def test_lists_become_tensors():
    assert torch.equal(evaluate_expression("[1, 2, 3]"), torch.tensor([1, 2, 3]))
    result = evaluate_expression("[[1.5, 2], [3, 4]]", dtype=torch.float64)
    assert result.dtype == torch.float64 and result.tolist() == [[1.5, 2.0], [3.0, 4.0]]


@pytest.mark.parametrize(
    ("text", "shape", "dtype"),
    [
        ("zeros(2, 3)", (2, 3), torch.float64),
        ("zeros((2, 3))", (2, 3), torch.float64),
        ("ones(4)", (4,), torch.float64),
        ("zeros()", (), torch.float64),
        ("full((2, 2), 1.5)", (2, 2), torch.float64),
        ("full(3, 2)", (3,), torch.float64),
        ("arange(5)", (5,), torch.int64),
        ("arange(0, 1, 0.25)", (4,), torch.float64),
        ("arange(10, 0, -3)", (4,), torch.int64),
        ("linspace(0, 1, 5)", (5,), torch.float64),
        ("eye(3)", (3, 3), torch.float64),
        ("eye(2, 4)", (2, 4), torch.float64),
        ("randn(2, 3)", (2, 3), torch.float64),
        ("rand(3)", (3,), torch.float64),
        ("randint(1000, (1, 16))", (1, 16), torch.int64),
        ("randint(5, 10, (3,))", (3,), torch.int64),
        ("randint(5, 10)", (), torch.int64),
        ("normal(0, 0.02, (2, 2))", (2, 2), torch.float64),
        ("normal(0, 1, 3, 2)", (3, 2), torch.float64),
        ("randn_like(zeros(2, 2))", (2, 2), torch.float64),
        ("rand_like(zeros(3))", (3,), torch.float64),
    ],
)
def test_constructors_shape_and_dtype(text, shape, dtype):
    result = evaluate_expression(text, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert tuple(result.shape) == shape
    assert result.dtype == dtype
    assert result.device.type == "cpu"


def test_constructor_values():
    assert evaluate_expression("arange(10, 0, -3)").tolist() == [10, 7, 4, 1]
    assert evaluate_expression("full((2,), 1.5)").tolist() == [1.5, 1.5]
    assert torch.equal(evaluate_expression("eye(2)"), torch.eye(2))
    assert torch.equal(evaluate_expression("linspace(0, 1, 3)"), torch.tensor([0.0, 0.5, 1.0]))
    ints = evaluate_expression("randint(3, 5, (1000,))", generator=torch.Generator().manual_seed(1))
    assert set(ints.tolist()) == {3, 4}


@pytest.mark.parametrize("text", ["randn(4, 4)", "rand(5)", "randint(100, (8,))", "normal(1, 2, (3,))", "randn_like(x)", "x + rand_like(x)"])
def test_seeded_random_is_reproducible(text):
    def once(seed):
        return run(text, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(once(7), once(7))
    assert not torch.equal(once(7), once(8))


def test_random_matches_torch_with_the_same_seed():
    result = evaluate_expression("randn(3, 2)", generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    expected = torch.randn(3, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert torch.equal(result, expected)


def test_integer_dtype_keeps_random_functions_floating():
    result = evaluate_expression("randn(3)", dtype=torch.int64)
    assert result.dtype == torch.float32
    assert evaluate_expression("zeros(2)", dtype=torch.int64).dtype == torch.int64


def test_integer_variable_division_uses_the_float_dtype():
    x = torch.tensor([1, 2, 3])
    assert run("x / 2", x=x, dtype=torch.float64).dtype == torch.float64
    assert run("x * 2", x=x).dtype == torch.int64
    assert run("~x", x=x).tolist() == [-2, -3, -4]


def test_bool_variable_logic():
    x = torch.tensor([True, False])
    assert run("~x", x=x).tolist() == [False, True]
    assert run("not x", x=x).tolist() == [False, True]
    assert run("x | ~x", x=x).tolist() == [True, True]


def test_names_lists_free_variables_only():
    expression = parse_expression("clamp(x * w, min=lo) + pi + e + inf")
    assert expression.names == frozenset({"x", "w", "lo"})
    assert parse_expression("zeros(3)").names == frozenset()


def test_expression_is_immutable_and_reusable():
    expression = parse_expression("x + 1")
    with pytest.raises(AttributeError):
        expression.text = "x + 2"  # type: ignore[misc]
    assert isinstance(expression, Expression) and expression.text == "x + 1"
    assert expression.evaluate({"x": 1}) == 2
    assert expression.evaluate({"x": 2}) == 3
    assert expression == parse_expression("x + 1") and hash(expression) == hash(parse_expression("x + 1"))


def test_functions_list_is_the_documented_one():
    documented = set(
        "abs clamp where sign sqrt exp log log2 log10 sin cos tan tanh sigmoid relu minimum maximum floor ceil round "
        "mean sum min max std norm quantile zeros ones full arange linspace eye randn rand randint normal zeros_like ones_like "
        "randn_like rand_like reshape transpose flip float int".split()
    )
    assert documented == FUNCTIONS


# (text, position, fragment of the message)
FORBIDDEN = [
    ("x.data", 2, "attribute"),
    ("abs(x).sum", 7, "attribute"),
    ("x.__class__", 2, "attribute"),
    ("x[0]", 0, "indexing"),
    ("__import__('os')", 0, "not an allowed function"),
    ("__builtins__", 0, "double underscores"),
    ("import os", 0, "imports"),
    ("from os import path", 0, "imports"),
    ("y = 1", 0, "assignments"),
    ("x += 1", 0, "assignments"),
    ("x\ny", 0, "single expression"),
    ("lambda: 1", 0, "lambda"),
    ("[i for i in x]", 0, "comprehensions"),
    ("(i for i in x)", 0, "comprehensions"),
    ("{i: i for i in x}", 0, "comprehensions"),
    ("f'{x}'", 0, "string"),
    ("'abc'", 0, "string"),
    ("x + b'a'", 4, "string"),
    ("abs(*x)", 4, "starred"),
    ("abs(**x)", 4, "**"),
    ("(y := 1)", 1, "assignment"),
    ("open('f')", 0, "not an allowed function"),
    ("eval('1')", 0, "not an allowed function"),
    ("x(1)", 0, "not an allowed function"),
    ("abs(x)(1)", 0, "only the listed functions"),
    ("x + abs", 4, "is a function"),
    ("abs(x, foo=1)", 7, "unexpected keyword"),
    ("clamp(x, lo=1)", 9, "unexpected keyword"),
    ("min(x, 1)", 0, "minimum/maximum"),
    ("sqrt()", 0, "missing"),
    ("x and 1", 0, "&"),
    ("x or 1", 0, "|"),
    ("x ^ 2", 0, "**"),
    ("x << 2", 0, "<<"),
    ("x is 1", 0, "'is'"),
    ("1 in x", 0, "'in'"),
    ("None", 0, "None"),
    ("1j", 0, "1j"),
    ("x + ...", 4, "Ellipsis"),
    ("{1}", 0, "sets"),
    ("{1: 2}", 0, "dictionaries"),
    ("", 0, "empty"),
    ("   ", 0, "empty"),
    ("1 +", 3, "syntax"),
    ("x +* 2", 3, "syntax"),
    ("é + $", 4, "syntax"),
    ("(", 0, "syntax"),
    ("await x", 0, "not allowed"),
]


@pytest.mark.parametrize(("text", "position", "fragment"), FORBIDDEN)
def test_forbidden_constructs_are_refused_with_position(text, position, fragment):
    with pytest.raises(ExpressionError) as info:
        parse_expression(text)
    assert fragment in str(info.value)
    assert info.value.position == position
    # The user reads where, counting from 1 (the CLI and the formula dialog show the message).
    assert f"at character {position + 1} of the formula" in info.value.message


def test_position_counts_characters_not_bytes():
    with pytest.raises(ExpressionError) as info:
        parse_expression("ééé + x.data")
    assert info.value.position == 8


def test_too_long_and_too_deep_are_refused():
    with pytest.raises(ExpressionError, match="longer than"):
        parse_expression("x" * 2001)
    with pytest.raises(ExpressionError, match="nested too deeply"):
        parse_expression("-" * 60 + "x")
    with pytest.raises(ExpressionError, match="nested too deeply"):
        parse_expression("abs(" * 60 + "x" + ")" * 60)
    with pytest.raises(ExpressionError):
        parse_expression("(" * 500 + "x" + ")" * 500)
    assert run("-" * 40 + "x").shape == X.shape


def test_unknown_names_list_the_known_ones():
    with pytest.raises(ExpressionError) as info:
        evaluate_expression("x + y", {"x": 1, "w": 2})
    assert "'y'" in str(info.value) and "w, x" in str(info.value)
    assert info.value.position == 4
    with pytest.raises(ExpressionError, match="unknown name 'os'"):
        evaluate_expression("os")


@pytest.mark.parametrize(
    "text",
    [
        "zeros(10**12)",
        "ones(10**6, 10**6)",
        "x + zeros(100000, 100000)",
        "randn(10**5, 10**5)",
        "rand(10**5, 10**5)",
        "randint(10, (10**6, 10**6))",
        "normal(0, 1, (10**6, 10**6))",
        "full((10**6, 10**6), 1)",
        "eye(10**6)",
        "arange(10**12)",
        "arange(0, 1e12)",
        "linspace(0, 1, 10**12)",
        "reshape(x, 6) + reshape(arange(10**9), (10**9, 1))",
    ],
)
def test_oversized_allocations_are_refused_before_allocating(text, monkeypatch):
    calls = []
    for name in ("zeros", "ones", "full", "randn", "rand", "randint", "eye", "arange", "linspace", "empty"):
        real = getattr(torch, name)

        def spy(*args, _real=real, _name=name, **kwargs):
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(expression_functions.torch, name, spy)
    start = time.perf_counter()
    with pytest.raises(ExpressionError, match="limit"):
        run(text)
    assert time.perf_counter() - start < 1.0
    assert calls == []


def test_broadcast_result_is_bounded_even_when_inputs_are_small():
    a = torch.zeros(4000, 1)
    b = torch.zeros(1, 4000)
    with pytest.raises(ExpressionError, match="limit of 1,000,000"):
        evaluate_expression("a * b", {"a": a, "b": b}, numel_budget=1_000_000)
    assert evaluate_expression("a * b", {"a": a, "b": b}, numel_budget=16_000_000).shape == (4000, 4000)


def test_budget_grows_to_the_largest_variable():
    x = torch.zeros(1000)
    assert run("x * 2", x=x, numel_budget=10).shape == (1000,)
    with pytest.raises(ExpressionError, match="limit"):
        run("zeros(1001)", x=x, numel_budget=10)


def test_matmul_work_is_bounded():
    with pytest.raises(ExpressionError, match="multiply-adds"):
        evaluate_expression("ones(3000, 3000) @ ones(3000, 3000)")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("x + [1, 2]", "cannot be broadcast"),
        ("x @ x", "cannot matrix-multiply"),
        ("reshape(x, 4)", "invalid for input of size 6"),
        ("transpose(x, 0, 5)", "out of range"),
        ("1 // 0", "division by zero"),
        ("int(nan)", "cannot convert"),
        ("int(x / 0)", "NaN or infinity"),
        ("zeros(-1)", "must not be negative"),
        ("zeros(2.5)", "whole number"),
        ("randint(5, 2)", "low < high"),
        ("normal(0, -1, 3)", "std must not be negative"),
        ("clamp(x)", "needs min, max"),
        ("where(x, 1, 2)", "must be boolean"),
        ("1 if x else 2", "must be boolean"),
        ("x & 1", "needs booleans"),
        ("1.5 | 2", "needs booleans"),
        ("~1.5", "needs booleans"),
        ("2 @ 3", "two tensors"),
        ("zeros_like(3)", "takes a tensor"),
        ("min(zeros(0))", "empty tensor"),
        ("[1, [2, 3]]", ""),
        ("x ** -1 + int(x) ** -1", "negative integer powers"),
        ("arange(0, 1, 0)", "non-zero step"),
        ("arange(0, inf)", "finite"),
        ("x * 99999999999999999999999", "too big"),
    ],
)
def test_evaluation_errors_are_expression_errors(text, fragment):
    with pytest.raises(ExpressionError) as info:
        run(text)
    assert fragment in str(info.value)
    assert info.value.position is not None


def test_evaluation_error_points_at_the_failing_call():
    with pytest.raises(ExpressionError) as info:
        run("x * 2 + reshape(x, 4)")
    assert info.value.position == 8


def test_bad_variables_are_refused():
    with pytest.raises(ExpressionError, match="must be a tensor or a number"):
        evaluate_expression("x", {"x": "rm -rf"})


def test_seeded_formula_on_another_dtype():
    result = run("x + normal(0, 0.1, (2, 3))", x=X64, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert result.dtype == torch.float64 and result.shape == (2, 3)


def test_quantile_keeps_the_top_fraction_by_magnitude_at_any_size():
    x = torch.tensor([0.1, -5.0, 0.2, 3.0, -0.3, 0.4, 0.5, -0.6, 0.7, 0.8])
    kept = run("where(abs(x) >= quantile(abs(x), 0.8), x, 0)", x)
    assert torch.equal(kept != 0, torch.tensor([False, True, False, True] + [False] * 6))
    assert float(run("quantile(x, 0)", X)) == -2.0 and float(run("quantile(x, 1)", X)) == 3.0
    big = torch.arange(17_000_000, dtype=torch.float32)  # torch.quantile refuses over 16M values
    assert float(run("quantile(x, 0.5)", big)) == pytest.approx(8_499_999.5, abs=1)  # float32
    assert float(run("quantile(x, 0.3)", X)) == pytest.approx(float(torch.quantile(X, 0.3)))
    for bad in ("quantile(x, 1.5)", "quantile(x, -0.1)"):
        with pytest.raises(ExpressionError, match="from 0 to 1"):
            run(bad)
