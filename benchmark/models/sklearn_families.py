"""scikit-learn regressors as model families: the baselines a practitioner would otherwise pick.

Each seed gets its own estimator (`random_state` = the seed) fitted on its
own training sample, so a seed's member is the same whichever seeds run
beside it. They train on the fixed training set (`--samples`), also when
a run trains the neural families by steps, and their fits run in a thread
pool: scikit-learn's heavy loops release the GIL. An untrained estimator
predicts nothing, so their NALU score (which divides by the untrained error)
is undefined.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from zipfile import ZIP_DEFLATED

import numpy as np

from ..errors import FuncbenchError
from ..model import (
    Model,
    ModelSpec,
    TrainingData,
    TrainingLog,
    TrainSettings,
    fitted_once_log,
)
from ..registry import model_family
from ..threads import worker_threads

if TYPE_CHECKING:  # scikit-learn is imported when a family is selected, not by every `bench` command
    from sklearn.base import RegressorMixin


#: The packages whose types a stored estimator may hold (`SklearnEnsemble.load_state`).
TRUSTED_PACKAGES = ("sklearn", "numpy", "scipy")


class SklearnEnsemble:
    """The `Model` protocol for one scikit-learn estimator per seed."""

    def __init__(self, make: Callable[[int], RegressorMixin], inputs: tuple[str, ...], seeds: Sequence[int],
                 readable: Callable[[RegressorMixin, tuple[str, ...]], dict[str, float]] | None = None,
                 derived: Mapping[str, Callable[[RegressorMixin], Any]] | None = None):
        self.estimators = [make(int(seed)) for seed in seeds]
        self.inputs = inputs
        self.seeds = tuple(seeds)
        self.readable = readable
        #: Fitted attributes that `state` leaves out and `load_state` computes again from the rest, by name.
        self.derived = dict(derived or {})
        self.fitted = False

    def fit(self, data: TrainingData, settings: TrainSettings) -> TrainingLog:
        from joblib import Parallel, delayed
        from sklearn.exceptions import ConvergenceWarning

        x, y = data.x.astype(np.float64), data.y[:, :, 0]
        with warnings.catch_warnings():
            # An MLP stopped at its epoch budget, or a kernel at a bound, is
            # the benchmark's setting, not news to print on every cell.
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.estimators = Parallel(n_jobs=worker_threads(), prefer="threads")(
                delayed(estimator.fit)(x[s], y[s]) for s, estimator in enumerate(self.estimators)
            )
        self.fitted = True
        return fitted_once_log(self.predict, data, len(self.seeds))

    def predict(self, x: np.ndarray) -> np.ndarray:
        if not self.fitted:
            return np.full((*x.shape[:2], 1), np.nan)
        x = np.asarray(x, dtype=np.float64)
        return np.stack([e.predict(x[s]).reshape(-1, 1) for s, e in enumerate(self.estimators)])

    def readable_parameters(self) -> list[dict[str, float]]:
        if self.readable is None or not self.fitted:
            return [{} for _ in self.seeds]
        return [self.readable(e, self.inputs) for e in self.estimators]

    def formulas(self) -> list[None]:
        return [None for _ in self.seeds]

    def state(self) -> bytes:
        """The fitted estimators in skops' format: a zip of their arrays and parameters, no pickle.

        Attributes the family can compute again (`derived`) are left out:
        a Gaussian process's Cholesky factor is 99% of it (n x n floats).
        """
        import skops.io

        return skops.io.dumps([_without(e, self.derived) for e in self.estimators], compression=ZIP_DEFLATED)

    def load_state(self, data: bytes) -> None:
        import skops.io

        # skops builds only the types it is told to trust: those of scikit-learn, numpy and scipy.
        untrusted = skops.io.get_untrusted_types(data=data)
        if foreign := [name for name in untrusted if name.partition(".")[0] not in TRUSTED_PACKAGES]:
            raise FuncbenchError(f"it holds type(s) {', '.join(foreign)}, not scikit-learn's, numpy's or "
                                 "scipy's, and building them could run code")
        self.estimators = skops.io.loads(data, trusted=untrusted)
        for estimator in self.estimators:
            for name, compute in self.derived.items():
                setattr(estimator, name, compute(estimator))
        self.fitted = True

    def members(self, index: slice, inputs: tuple[str, ...]) -> SklearnEnsemble:
        part = copy.copy(self)
        part.estimators, part.seeds, part.inputs = self.estimators[index], self.seeds[index], inputs
        return part


def _without(estimator: RegressorMixin, names: Iterable[str]) -> RegressorMixin:
    """A shallow copy of a fitted estimator, lacking the attributes `names`: the fitted one is left whole."""
    slim = copy.copy(estimator)
    for name in names:
        delattr(slim, name)
    return slim


def _spec(make: Callable[[int], RegressorMixin], description: str, readable=None, derived=None) -> ModelSpec:
    def build(inputs: tuple[str, ...], seeds: Sequence[int], device: str) -> Model:
        return SklearnEnsemble(make, inputs, seeds, readable, derived)

    # scikit-learn fits on the CPU whatever --device says, and --lr does not apply.
    return ModelSpec(build, description, learning_rate=None)


def _polynomial_coefficients(estimator, inputs: tuple[str, ...]) -> dict[str, float]:
    features, ridge = estimator.named_steps["polynomialfeatures"], estimator.named_steps["ridge"]
    names = features.get_feature_names_out(list(inputs))
    return {**{f"coef[{name}]": float(c) for name, c in zip(names, ridge.coef_)}, "intercept": float(ridge.intercept_)}


@model_family(description="polynomial features of a degree, then ridge regression (scikit-learn)")
def poly_ridge(degree: int = 2, alpha: float = 1e-8) -> ModelSpec:
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures

    if not 1 <= degree <= 10:
        raise ValueError(f"degree must be between 1 and 10, got {degree}")
    if alpha < 0:
        raise ValueError(f"alpha must be at least 0, got {alpha}")
    return _spec(lambda seed: make_pipeline(PolynomialFeatures(degree, include_bias=False), Ridge(alpha=alpha)),
                 f"polynomial of degree {degree} + ridge (alpha {alpha:g})", _polynomial_coefficients)


@model_family(description="k-nearest-neighbours regression, neighbours weighted equally (scikit-learn)")
def knn(k: int = 5) -> ModelSpec:
    from sklearn.neighbors import KNeighborsRegressor

    if not 1 <= k <= 10_000:
        raise ValueError(f"k must be between 1 and 10000, got {k}")
    return _spec(lambda seed: KNeighborsRegressor(n_neighbors=k), f"{k}-nearest neighbours")


@model_family(description="random forest (scikit-learn)")
def random_forest(trees: int = 100) -> ModelSpec:
    from sklearn.ensemble import RandomForestRegressor

    if not 1 <= trees <= 10_000:
        raise ValueError(f"trees must be between 1 and 10000, got {trees}")
    return _spec(lambda seed: RandomForestRegressor(n_estimators=trees, random_state=seed, n_jobs=1),
                 f"random forest of {trees} trees")


@model_family(description="gradient-boosted trees (scikit-learn)")
def gradient_boosting(trees: int = 100) -> ModelSpec:
    from sklearn.ensemble import GradientBoostingRegressor

    if not 1 <= trees <= 10_000:
        raise ValueError(f"trees must be between 1 and 10000, got {trees}")
    return _spec(lambda seed: GradientBoostingRegressor(n_estimators=trees, random_state=seed),
                 f"gradient boosting, {trees} trees")


@model_family(description="Gaussian process, RBF kernel plus noise, hyperparameters by marginal likelihood (scikit-learn)")
def gaussian_process() -> ModelSpec:
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    def make(seed: int):
        kernel = ConstantKernel() * RBF() + WhiteKernel(1e-6, (1e-12, 1e-1))
        return GaussianProcessRegressor(kernel, normalize_y=True, random_state=seed)

    return _spec(make, "Gaussian process, RBF kernel", derived={"L_": _cholesky_factor})


def _cholesky_factor(gp) -> np.ndarray:
    """A fitted Gaussian process's L_, computed as its `fit` computes it: cholesky(K(X_train_) + alpha I).

    Stored, it would be 8 MB a seed at 1000 samples, nearly all of the
    model. The mean the model predicts needs only alpha_; L_ gives its spread
    (`predict(return_std=True)`), which a loaded estimator keeps this way.
    """
    from scipy.linalg import cholesky

    kernel = gp.kernel_(gp.X_train_)
    kernel[np.diag_indices_from(kernel)] += gp.alpha
    return cholesky(kernel, lower=True, check_finite=False)


@model_family(description="scikit-learn's MLPRegressor: one hidden layer, Adam")
def sklearn_mlp(width: int = 64, epochs: int = 100) -> ModelSpec:
    from sklearn.neural_network import MLPRegressor

    if not 1 <= width <= 65536 or not 1 <= epochs <= 1_000_000:
        raise ValueError(f"need 1 <= width <= 65536 and 1 <= epochs <= 1000000, got width={width}, epochs={epochs}")
    return _spec(lambda seed: MLPRegressor(hidden_layer_sizes=(width,), solver="adam", batch_size=200, max_iter=epochs, tol=0.0,
                                           n_iter_no_change=epochs + 1, random_state=seed),
                 f"MLPRegressor, 1 x {width}, {epochs} epochs")
