"""The closed-form GP is BoTorch's SingleTaskGP + LogExpectedImprovement, to rounding.

BoTorch is the reference: with the hyperparameters our grid found set on a SingleTaskGP (standardised
outcomes, its default RBF kernel and noise), its posterior and its log EI must equal ours. The
search then only differs from BoTorch's in how the hyperparameters are found (a grid MAP instead
of L-BFGS from one start), which the second test bounds.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from lrpilot_service.engine import gp

torch = pytest.importorskip("torch")
botorch = pytest.importorskip("botorch")

XS = [0.5, 0.2, 0.8, 0.35, 0.62, 0.41, 0.1, 0.9]
YS = [1.0, 1.3, 1.1, 0.9, 0.95, 0.92, 1.6, 1.4]
GRID = np.linspace(0.0, 1.0, 201)


def _botorch_with(fitted: gp.Posterior) -> object:
    from botorch.models import SingleTaskGP
    from botorch.models.transforms.outcome import Standardize

    train_x = torch.tensor(XS, dtype=torch.float64).unsqueeze(-1)
    train_y = torch.tensor(YS, dtype=torch.float64).unsqueeze(-1)
    model = SingleTaskGP(train_x, train_y, outcome_transform=Standardize(m=1))
    model.covar_module.lengthscale = fitted.lengthscale
    model.likelihood.noise = fitted.noise
    model.mean_module.constant = fitted.constant
    model.eval()
    return model


def test_posterior_and_log_ei_equal_botorch_with_the_same_hyperparameters() -> None:
    from botorch.acquisition.analytic import LogExpectedImprovement

    fitted = gp.fit(XS, YS)
    model = _botorch_with(fitted)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        post = model.posterior(torch.tensor(GRID, dtype=torch.float64).unsqueeze(-1))  # type: ignore[attr-defined]
        ref_mean = post.mean.squeeze(-1).numpy()
        ref_sd = post.variance.squeeze(-1).sqrt().numpy()
        acq = LogExpectedImprovement(model, best_f=min(YS), maximize=False)  # type: ignore[arg-type]
        ref_lei = acq(torch.tensor(GRID, dtype=torch.float64).reshape(-1, 1, 1)).numpy()
    mean, sd = fitted.predict(GRID)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(sd, ref_sd, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(gp.log_expected_improvement(mean, sd, min(YS)), ref_lei, rtol=1e-6, atol=1e-6)


def test_the_grid_map_is_at_least_as_likely_as_botorchs_lbfgs_fit() -> None:
    from botorch.fit import fit_gpytorch_mll
    from gpytorch.mlls import ExactMarginalLogLikelihood

    fitted = gp.fit(XS, YS)
    ours = _botorch_with(fitted)
    theirs = _botorch_with(fitted)
    theirs.train()  # type: ignore[attr-defined]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_gpytorch_mll(ExactMarginalLogLikelihood(theirs.likelihood, theirs))  # type: ignore[attr-defined]

    def objective(model: object) -> float:
        model.train()  # type: ignore[attr-defined]
        mll = ExactMarginalLogLikelihood(model.likelihood, model)  # type: ignore[attr-defined]
        out = mll(model(*model.train_inputs), model.train_targets)  # type: ignore[attr-defined]
        return float(out.detach())

    # within the grid's resolution of the optimum L-BFGS reached from BoTorch's start
    assert objective(ours) >= objective(theirs) - 0.05


def test_log_ei_is_finite_far_below_the_best() -> None:
    values = gp.log_expected_improvement(np.array([0.0, 10.0, 1e3]), np.array([1.0, 1.0, 1.0]), best=0.0)
    assert np.all(np.isfinite(values)) and values[0] > values[1] > values[2]
    assert math.isclose(values[0], math.log(1 / math.sqrt(2 * math.pi)), rel_tol=1e-12)
