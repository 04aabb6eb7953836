"""The symbolic family (pyoperon) and the formulas it learns: SRBench's rounding and "symbolic solution"."""

import json

import numpy as np
import pytest
import sympy

from benchmark.data import sample_splits
from benchmark.errors import FuncbenchError
from benchmark.formula import (
    MAX_OPERATIONS,
    Affine,
    GatedProduct,
    Input,
    PowerProduct,
    Symbolic,
    input_symbol,
    is_exact,
    linear_form,
    parse_formula,
    round_constants,
    symbolic_solution,
)
from benchmark.model import MonitoredSplit, TrainingData, TrainSettings
from benchmark.plugins import load_registry
from benchmark.testing import check_model_family

#: A search small enough for a test to run in a fraction of a second.
QUICK = {"generations": 10, "population": 50}


@pytest.fixture(scope="module")
def registry():
    return load_registry()


@pytest.fixture(scope="module")
def product(registry):
    """I.12.1 of the AI Feynman table, F = mu*Nn, as a run samples it for seeds 0 and 1."""
    target = registry.targets["feynman"].create(eq="I.12.1")
    return target, {split.name: split for split in sample_splits(target, [0, 1], 1000, 1000)}


def trained(registry, target, splits, seeds=(0, 1), **params):
    model = registry.models["symbolic"].create(**params).build(target.inputs, list(seeds), "cpu")
    n, train, held_out = len(seeds), splits["train"], splits["interpolation"]  # the first n seeds' data
    model.fit(TrainingData(train.x[:n], train.y[:n], [MonitoredSplit(held_out.name, held_out.x[:n], held_out.y[:n])]),
              TrainSettings())
    return model


def nmse(predicted, truth):
    return float(np.mean((predicted - truth) ** 2) / np.var(truth))


def test_the_default_search_finds_mu_times_nn_exactly_on_seeds_0_and_1(registry, product):
    target, splits = product
    model = trained(registry, target, splits)
    assert model.failures() == [None, None]
    far = splits["far"]  # every point has a variable in [41, 81]
    for s, formula in enumerate(model.formulas()):
        x = np.concatenate([split.x[s] for split in splits.values()]).astype(np.float64)
        y = np.concatenate([split.y[s] for split in splits.values()])
        assert nmse(model.predict(far.x)[s], far.y[s]) < 1e-6
        assert symbolic_solution(formula, target.expression, target.inputs, x), formula.formula(target.inputs)
        assert is_exact(formula, y, x)
        assert formula.formula(target.inputs) == "y = 1.000*Nn*mu"
    assert [p["length"] > 0 for p in model.readable_parameters()] == [True, True]


def test_the_family_passes_funcbenchs_own_checks(registry):
    check_model_family(registry.models["symbolic"], dims=(2,), **QUICK)


def test_a_seed_whose_fit_raises_fails_alone(registry, product, monkeypatch):
    from pyoperon.sklearn import SymbolicRegressor

    fit = SymbolicRegressor.fit

    def fails_for_seed_1(self, x, y):
        if self.random_state == 1:
            raise RuntimeError("the search broke\nsecond line")
        return fit(self, x, y)

    monkeypatch.setattr(SymbolicRegressor, "fit", fails_for_seed_1)
    target, splits = product
    model = trained(registry, target, splits, **QUICK)
    assert model.failures() == [None, "pyoperon raised RuntimeError: the search broke"]
    formulas = model.formulas()
    assert isinstance(formulas[0], Symbolic) and formulas[1] is None
    predicted = model.predict(splits["far"].x)
    assert np.isfinite(predicted[0]).all() and np.isnan(predicted[1]).all()
    assert model.readable_parameters()[1] == {}


def test_a_seed_past_its_time_limit_is_reported_as_such(registry, product):
    target, splits = product
    model = trained(registry, target, splits, seeds=(0,), generations=100_000, population=1000, time_limit=1)
    assert model.failures() == ["timed out after 1 s"]
    assert model.formulas() == [None]


def test_a_formula_not_finite_on_its_data_fails_its_seed(registry, product, monkeypatch):
    from pyoperon.sklearn import SymbolicRegressor

    monkeypatch.setattr(SymbolicRegressor, "get_model_string", lambda self, model, precision, names: "log(x0 - 3)")
    target, splits = product
    model = trained(registry, target, splits, seeds=(0,), **QUICK)
    (reason,) = model.failures()
    assert reason.startswith("its formula is not finite on ") and reason.endswith("of its 1000 training points")


def test_a_stored_model_predicts_bit_for_bit_what_the_trained_one_did(registry, product, monkeypatch):
    from pyoperon.sklearn import SymbolicRegressor

    fit = SymbolicRegressor.fit
    monkeypatch.setattr(SymbolicRegressor, "fit", lambda self, x, y: fit(self, x, y) if self.random_state == 0
                        else (_ for _ in ()).throw(ValueError("no")))
    target, splits = product
    model = trained(registry, target, splits, seeds=(0, 7), **QUICK)
    state = model.state()
    assert json.loads(state)["members"][1] == {"failure": "pyoperon raised ValueError: no"}
    loaded = registry.models["symbolic"].create(**QUICK).build(target.inputs, [0, 7], "cpu")
    loaded.load_state(state)
    points = np.random.default_rng(0).uniform(-100, 100, (2, 500, 2))
    assert np.array_equal(loaded.predict(points), model.predict(points), equal_nan=True)
    assert loaded.failures() == model.failures() and loaded.formulas() == model.formulas()
    assert loaded.readable_parameters() == model.readable_parameters()
    # One member alone, for a target naming its inputs otherwise: the same formula by position.
    alone = loaded.members(slice(0, 1), ("a", "b"))
    assert np.array_equal(alone.predict(points[:1]), model.predict(points)[:1])
    assert alone.formulas() == model.formulas()[:1] and alone.failures() == [None]


def stored(**changes) -> bytes:
    state = {"format": "funcbench-symbolic", "version": 1, "inputs": 2,
             "members": [{"formula": "x0*x1", "length": 3}, {"failure": "timed out after 60 s"}]}
    return json.dumps({**state, **changes}).encode()


@pytest.mark.parametrize("data, says", [
    (b"\x80\x81 not text", "not the symbolic family's JSON state"),
    (b"{\"members\": ", "not the symbolic family's JSON state"),
    (b"[1, 2]", "no format 'funcbench-symbolic'"),
    (stored(version=2), "version 2"),
    (stored(inputs=3), "formulas of 3 inputs, not 2"),
    (stored(members=[{"formula": "x0*x1", "length": 3}]), "2 seeds' formulas"),
    (stored(members=[{"formula": "x0*x1"}, {"failure": "x"}]), "seed 0's entry holds neither"),
    (stored(members=[{"formula": "x0*x1", "length": 3}, "x0"]), "seed 1's entry is not an object"),
    (stored(members=[{"formula": "__import__('os').system('true')", "length": 3}, {"failure": "x"}]),
     "seed 0's formula is refused: formula '__import__('os').system('true')' calls __import__('os').system, "
     "which is not a known function"),
    (stored(members=[{"formula": "x0.__class__", "length": 3}, {"failure": "x"}]), "holds Attribute"),
    (stored(members=[{"formula": "x0 * x2", "length": 3}, {"failure": "x"}]), "uses x2, which is neither an input"),
    (stored(members=[{"formula": "x0 * (x1", "length": 3}, {"failure": "x"}]), "does not parse"),
    # Text that would hang sympy, or build something that is not a formula, is refused, not evaluated.
    (stored(members=[{"formula": "9**9**9", "length": 3}, {"failure": "x"}]), "raises to a power beyond 1000"),
    (stored(members=[{"formula": "x0**(9**9**9)", "length": 3}, {"failure": "x"}]), "raises to a power beyond"),
    (stored(members=[{"formula": "(x0,)*10**9", "length": 3}, {"failure": "x"}]), "holds Tuple"),
    (stored(members=[{"formula": "x0, x1", "length": 3}, {"failure": "x"}]), "holds Tuple"),
    (stored(members=[{"formula": "[x0]", "length": 3}, {"failure": "x"}]), "holds List"),
    (stored(members=[{"formula": "x0 < x1", "length": 3}, {"failure": "x"}]), "holds Compare"),
    (stored(members=[{"formula": "x0 ^ x1", "length": 3}, {"failure": "x"}]), "holds BinOp"),
    (stored(members=[{"formula": "~x0", "length": 3}, {"failure": "x"}]), "holds UnaryOp"),
    (stored(members=[{"formula": "\uff45\uff56\uff41\uff4c(1)", "length": 3}, {"failure": "x"}]),
     "calls eval, which is not a known function"),
    (stored(members=[{"formula": "exp(x0, x1)", "length": 3}, {"failure": "x"}]), "with 2 arguments, not 1"),
    (stored(members=[{"formula": "x0 + " * 5000 + "x1", "length": 3}, {"failure": "x"}]), "longer than 20000"),
])
def test_load_state_refuses_what_is_not_a_stored_ensemble_in_one_line(registry, data, says):
    model = registry.models["symbolic"].create().build(("mu", "Nn"), [0, 1], "cpu")
    with pytest.raises(FuncbenchError) as error:
        model.load_state(data)
    assert says in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("values, says", [
    ({"generations": 0}, "generations must be between 1 and 100000, got 0"),
    ({"population": 5}, "population must be between 10 and 100000, got 5"),
    ({"max_length": 2}, "max_length must be between 3 and 1000, got 2"),
    ({"time_limit": 0}, "time_limit must be between 1 and 86400 seconds, got 0"),
    ({"library": "trig"}, "library"),
])
def test_a_bad_setting_is_one_line(registry, values, says):
    with pytest.raises(FuncbenchError) as error:
        registry.models["symbolic"].create(**values)
    assert says in str(error.value) and "\n" not in str(error.value)


def symbols(names):
    return [sympy.Symbol(name, real=True) for name in names.split()]


def test_constants_are_rounded_as_srbench_rounds_them():
    theta, x, y = symbols("theta x y")
    gaussian = round_constants(parse_formula("exp(-theta**2/2)/sqrt(2*pi)", ["theta"]))
    assert gaussian == sympy.Float(0.399) * sympy.exp(sympy.Float(-0.5) * theta**2)  # 1/sqrt(2*pi) is one constant
    assert round_constants(parse_formula("q/(4*pi*r**2)", ["q", "r"])) == sympy.Float(0.08) * symbols("q")[0] / symbols("r")[0] ** 2
    assert round_constants(parse_formula("2.7182818*x + 0.00004*y + 0.0004", ["x", "y"])) == sympy.Float(2.718) * x
    assert round_constants(parse_formula("x**2.0000001 + x**0.5", ["x"])) == x**2 + sympy.sqrt(x)  # exponents exact
    assert round_constants(x**sympy.Rational(1, 3)) == x**sympy.Rational(1, 3)
    assert round_constants(parse_formula("3*x", ["x"])) == 3 * x  # integers stay exact
    # A term that rounds away lets its product's coefficients combine before they are rounded.
    assert round_constants(parse_formula("0.1176531*y*(8.4995605*x - 3.4e-8*y)", ["x", "y"])) == sympy.Float(1.0) * x * y


@pytest.mark.parametrize("learned, target, same", [
    ("0.39894228*exp(-0.5*a*a)", "exp(-a**2/2)/sqrt(2*pi)", True),
    ("a*a", "a**2", True),
    ("a**2.0000001 + 0.00001", "a**2", True),
    ("1.0000002*a*b - 0.0000003", "a*b", True),
    ("(a**2 - b**2)/(a - b)", "a + b", True),  # sympy's simplify decides
    ("sin(a)**2 + cos(a)**2", "1", True),
    ("1.001*a*b", "a*b", False),
    ("a*b + 0.01", "a*b", False),
    ("sin(a)", "a", False),
    ("sqrt(a**2)", "a", False),  # |a|, for a real a
    ("2.303*b*(0.438*a - 8.875) + 20.436*b", "a*b", False),  # rounded factor by factor, as printed
])
def test_a_symbolic_solution_is_the_target_once_constants_are_rounded(learned, target, same):
    assert symbolic_solution(Symbolic.parse(learned, ["a", "b"]), target, ["a", "b"]) is same


def test_symbolic_solution_takes_the_callers_points_and_any_expression():
    assert symbolic_solution(linear_form([1.0000001, 0.99999999]), "a + b", ["a", "b"])
    assert not symbolic_solution(linear_form([1.0, -1.0]), "a + b", ["a", "b"], np.array([[2.0, 0.0]]))
    # Equal where the caller looks (b = 0 there), so sympy decides, and finds them different.
    assert not symbolic_solution(linear_form([1.0, 0.5]), "a", ["a", "b"], np.array([[1.0, 0.0], [3.0, 0.0]]))


def test_formulas_too_large_to_simplify_are_never_a_solution():
    sines = " + ".join(f"sin({k}*a)" for k in range(1, 40))
    assert sympy.count_ops(parse_formula(sines, ["a"])) * 2 > MAX_OPERATIONS
    assert not symbolic_solution(Symbolic.parse(sines, ["a"]), sines, ["a"])


def test_every_expression_reads_as_sympy():
    a, b = symbols("a b")
    affine = Affine((1.5, -2.0), (Input(0), Input(1)), 0.25)
    assert affine.sympy(["a", "b"]) == sympy.Float(1.5) * a - sympy.Float(2.0) * b + sympy.Float(0.25)
    power = PowerProduct((2.0, -1.0), (Input(0), Input(1)))
    assert power.sympy(["a", "b"]) == sympy.Abs(a) ** sympy.Float(2.0) * sympy.Abs(b) ** sympy.Float(-1.0)
    gated = GatedProduct((1.0, 0.25), (Input(0), Input(1)))
    assert gated.sympy(["a", "b"]) == (sympy.Float(1.0) * a) * (sympy.Float(0.25) * b + sympy.Float(0.75))
    points = np.random.default_rng(0).uniform(0.5, 2, (20, 2))
    by_position = [input_symbol(0).name, input_symbol(1).name]
    for expression in (affine, power, gated):  # sympy's formula is the one the expression evaluates
        assert np.allclose(Symbolic(expression.sympy(by_position)).evaluate(points), expression.evaluate(points),
                           rtol=1e-12)


def test_a_symbolic_formula_reads_by_position_and_prints_its_constants_rounded():
    formula = Symbolic.parse("0.39894228*exp(-0.5*t**2) + 1e-07", ["t"])
    assert formula.formula(["theta"]) == "y = 0.399*exp(-0.500*theta**2)"
    assert formula.rounded().sympy(["theta"]) == round_constants(formula.sympy(["theta"]))
    points = np.array([[0.0], [1.0]])
    assert np.allclose(formula.evaluate(points), [0.39894238, 0.39894228 * np.exp(-0.5) + 1e-7], rtol=1e-12)
    assert Symbolic.parse("2.5", ["a", "b"]).evaluate(np.ones((3, 2))).tolist() == [2.5, 2.5, 2.5]
    assert np.isnan(Symbolic.parse("sqrt(a - 2)", ["a"]).evaluate(np.array([[1.0]]))).all()
