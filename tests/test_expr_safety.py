"""`${...}` is evaluated by a small whitelist interpreter: never `eval`, bounded in time and size."""

from __future__ import annotations

import builtins
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archspec.spec.load import load_spec
from archspec.core.errors import SpecError
from archspec.spec.expr import ExprError, evaluate

VARS = {"width": 2, "convs": [1, 2, 3], "cfg": {"out": 64}, "name": "net"}


def lookup(name: str):
    if name in VARS:
        return VARS[name]
    raise ExprError(f"unknown name '{name}'")


@pytest.mark.parametrize("expression", [
    "__import__('os').system('echo pwned')",
    "().__class__.__bases__[0].__subclasses__()",
    "cfg.__class__",
    "cfg.__init__.__globals__",
    "name.upper()",
    "open('/etc/passwd').read()",
    "eval('1')",
    "exec('x = 1')",
    "getattr(cfg, '__class__')",
    "(lambda: 1)()",
    "[x for x in convs]",
    "{'a': 1}",
    "f'{width}'",
    "9 ** 9 ** 9",
    "'a' * 10 ** 9",
    "[0] * 10 ** 9",
    "'%0999999999d' % 1",
    "round(5, -10 ** 15)",
    "10 ** 15 * 10 ** 15",
    "int('9' * 4000)",
    "make_divisible(32, 0)",
    "1 < 'a'",
    "-'a'",
    "convs[1:2]",
    "width if width else __import__('os')",
    "(" * 240 + "1" + ")" * 240,  # too many nested parentheses for Python's parser
    "x" * 600,
])
def test_hostile_expression_is_refused_quickly(expression: str) -> None:
    start = time.process_time()
    with pytest.raises(ExprError):
        evaluate(expression, lookup)
    assert time.process_time() - start < 1


@pytest.mark.parametrize("expression, value", [
    ("width * 2", 4),
    ("convs[1] + cfg.out", 66),
    ("make_divisible(32 * 1.1, 8)", 32),  # torchvision's _make_divisible(35.2, 8) = 32 (within 10%)
    ("max(convs) if width > 1 else 0", 3),
    ("0 or width", 2),  # Python's `or` gives the operand, not True
    ("width and 0", 0),
    ("round(2.675, 2)", 2.67),  # binary floating point, as Python rounds it
    ("10 % 3", 1),
    ("len(convs) * 8 // 3", 8),
])
def test_expressions_compute_what_python_computes(expression: str, value) -> None:
    assert evaluate(expression, lookup) == value


def test_evaluator_never_calls_eval_or_exec(monkeypatch) -> None:
    text = "name: x\nvars: {w: 3}\ninput: {size: 8}\nhead: [global_pool, flatten, {linear: '${w * 2}'}]\n"
    load_spec(text)  # once first: pydantic builds its models lazily (and evaluates type hints) on first use

    def forbidden(*args, **kwargs):
        raise AssertionError("eval/exec called")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    assert evaluate("make_divisible(width * 24, 8) + convs[2]", lookup) == 51
    spec = load_spec(text)
    assert spec.model.head[-1].out == 6


def test_hostile_expression_in_a_spec_is_a_located_error(tmp_path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "x.yaml"
    path.write_text(f"name: x\nnum_classes: \"${{__import__('os').mkdir('{marker}')}}\"\n", encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(str(path))
    assert str(info.value).startswith(f"{path}:2:14: num_classes: in ")
    assert not marker.exists()


def test_variable_chains_and_expansions_are_bounded() -> None:
    chain = "name: x\nvars:\n" + "".join(f"  v{i}: '${{v{i + 1}}}'\n" for i in range(200)) + "  v200: 1\n" \
            "num_classes: '${v0}'\n"
    with pytest.raises(SpecError, match="variables refer to variables more than 64 deep"):
        load_spec(chain)
    text = "name: x\nvars:\n  s0: " + "a" * 60 + "\n" + "".join(
        f"  s{i}: '" + f"${{s{i - 1}}}" * 10 + "'\n" for i in range(1, 8)) + "description: '${s7}'\n"
    start = time.process_time()
    with pytest.raises(SpecError, match="the text grows longer than 10000 characters"):
        load_spec(text)
    lists = "name: x\nvars:\n  l0: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"  l{i}: [" + ", ".join([f"'${{l{i - 1}}}'"] * 10) + "]\n" for i in range(1, 9)) + "description: '${l8}'\n"
    with pytest.raises(SpecError, match=r"vars.l4\[0\]: in '\$\{l3\}': result too large: more than 10000 items in all"):
        load_spec(lists)  # l3 counts 11,111 items (lists included): refused as the expression is evaluated
    # Each expression within its limit, the document beyond its own (20 x 1,111 values).
    wide = "name: x\nvars:\n  l0: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"  l{i}: [" + ", ".join([f"'${{l{i - 1}}}'"] * 10) + "]\n" for i in range(1, 3)) + \
        "description: [" + ", ".join(["'${l2}'"] * 20) + "]\n"
    with pytest.raises(SpecError, match="variables expand the document to more than 20,000 values"):
        load_spec(wide)
    assert time.process_time() - start < 5


def test_variables_naming_variables_past_the_stack_are_a_located_error() -> None:
    # 59 variables, each `${previous}` 30 mappings deep: within the limits of depth (64 variables, 64
    # levels), but resolving v59 recurses through all of them, deeper than Python's stack
    def nested(value: object, depth: int) -> object:
        for _ in range(depth):
            value = {"a": value}
        return value

    variables = {"v0": 1, **{f"v{i}": nested(f"${{v{i - 1}}}", 30) for i in range(1, 60)}}
    spec = {"name": "t", "vars": variables, "stem": [{"conv": {"out": 8, "kernel": 3}}],
            "head": [{"global_pool": {}}, "flatten", {"linear": {"out": "${v59}"}}]}
    with pytest.raises(SpecError, match=r"vars\.v\d+(\.a)+: in '\$\{v\d+\}': expression nested too deeply"):
        load_spec(spec)


def test_self_reference_is_reported_with_the_cycle() -> None:
    with pytest.raises(SpecError, match=r"'a' refers to itself: a -> b -> a"):
        load_spec("name: x\nvars: {a: '${b}', b: '${a}'}\nnum_classes: '${a}'\n")


@pytest.mark.parametrize("expression, value", [
    ("2 ** 10", 1024),
    ("2 ** -2", 0.25),
    ("2.49 ** 0.5", 2.49 ** 0.5),
    ("log(8, 2)", 3.0),
    ("round(log(100 / 24) / log(2.49))", 2),  # RegNet's block capacity (torchvision's rule)
    ("round(24 * 2.49 ** 2 / 8) * 8", 152),
])
def test_powers_and_logarithms(expression: str, value) -> None:
    assert evaluate(expression, lookup) == pytest.approx(value)


@pytest.mark.parametrize("expression, message", [
    ("10 ** 10 ** 10", "number too large: 10 \\*\\* 10000000000"),
    ("2.0 ** 2000", "number too large"),
    ("(-8) ** 0.5", "not a real number"),
    ("0 ** -1", "negative power"),
    ("log(0)", "log\\(\\): math domain error"),
    ("'a' ** 2", "numbers only"),
])
def test_powers_are_bounded_before_they_are_computed(expression: str, message: str) -> None:
    start = time.process_time()
    with pytest.raises(ExprError, match=message):
        evaluate(expression, lookup)
    assert time.process_time() - start < 0.1


def test_a_huge_power_in_a_spec_is_a_located_error() -> None:
    with pytest.raises(SpecError, match=r"<string>:1:11: vars\.n: in '\$\{10\*\*10\*\*10\}': number too large"):
        load_spec("vars: {n: '${10**10**10}'}\nname: x\ninput: {size: 8}\nstages: [{block: basic, out: '${n}'}]\n")


def _walked(expression: str, lookup_fn) -> object:
    """What the node-by-node interpreter gives (or raises), bypassing the plain steps `evaluate` takes."""
    import ast

    from archspec.spec.expr import _Evaluator

    try:
        return ("value", _Evaluator(lookup_fn).eval(ast.parse(expression, mode="eval").body))
    except ExprError as exc:
        return ("error", str(exc))


def _evaluated(expression: str, lookup_fn) -> object:
    try:
        return ("value", evaluate(expression, lookup_fn))
    except ExprError as exc:
        return ("error", str(exc))


_VALUES = st.recursive(
    st.one_of(st.integers(-10**16, 10**16), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5),
              st.booleans(), st.none()),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(["a", "0", "b"]), inner,
                                                                         max_size=3)),
    max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(value=_VALUES, index=st.one_of(st.integers(-6, 6), st.just(10**15), st.just(10**15 + 1)),
       big=st.booleans())
def test_a_name_and_an_indexed_name_evaluate_as_the_interpreter_walks_them(value, index, big) -> None:
    # `name` and `name[3]` take a shorter path than the tree walk (a sweep evaluates thousands): the
    # same value, or the same error, for any value the name holds (a list over the size limit too)
    held = [0] * 20_000 if big else value

    def lookup_fn(name: str):
        if name == "v":
            return held
        raise ExprError(f"unknown name '{name}'")

    for expression in ("v", f"v[{index}]", "w", f"w[{index}]", f"v[{index}][0]", "true", f"null[{index}]"):
        assert _evaluated(expression, lookup_fn) == _walked(expression, lookup_fn), expression
