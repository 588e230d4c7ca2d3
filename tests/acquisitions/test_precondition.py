"""Lengthscale preconditioning of the continuous acquisition optimizer."""

import torch
from botorch.acquisition import qKnowledgeGradient
from botorch.acquisition.analytic import LogExpectedImprovement
from botorch.models import SingleTaskGP
from botorch.models.transforms.input import Normalize

from acquisitions import Domain
from acquisitions.optimize import OptimizerSettings, optimize_acquisition
from acquisitions.precondition import ScaledAcquisition, input_scales


def _model(**kwargs):
    g = torch.Generator().manual_seed(0)
    X = torch.rand(20, 2, generator=g, dtype=torch.float64)
    Y = -((X - torch.tensor([0.3, 0.7], dtype=torch.float64)) ** 2 * torch.tensor([50.0, 0.5]))
    model = SingleTaskGP(X, Y.sum(-1, keepdim=True), **kwargs).eval()
    with torch.no_grad():  # very different lengthscales: the case preconditioning is for
        model.covar_module.lengthscale = torch.tensor([[0.1, 3.0]], dtype=torch.float64)
    return model


def test_scales_are_the_lengthscales_and_the_scaled_function_is_the_same_function():
    model = _model()
    acqf = LogExpectedImprovement(model, best_f=model.train_targets.max())
    scales = input_scales(acqf, 2)
    torch.testing.assert_close(scales, torch.tensor([0.1, 3.0], dtype=torch.float64))
    scaled = ScaledAcquisition(acqf, scales)
    Z = torch.rand(7, 1, 2, dtype=torch.float64)
    torch.testing.assert_close(scaled(Z), acqf(Z * scales))
    bounds = torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(scaled.scale_bounds(bounds)[1], 1 / scales)
    torch.testing.assert_close(scaled.unscale(Z), Z * scales)


def test_no_scales_without_a_plain_ard_kernel_or_for_one_shot_acquisitions():
    normalized = _model(input_transform=Normalize(d=2))
    assert input_scales(LogExpectedImprovement(normalized, best_f=0.0), 2) is None
    model = _model()
    assert input_scales(LogExpectedImprovement(model, best_f=0.0), 3) is None  # wrong width
    assert input_scales(qKnowledgeGradient(model, num_fantasies=4), 2) is None


def test_preconditioned_optimum_is_the_optimum():
    # The posterior mean of a GP fitted to a narrow-and-wide bowl peaks inside the box.
    from botorch.acquisition.analytic import PosteriorMean

    model = _model()
    acqf = PosteriorMean(model)
    assert input_scales(acqf, 2) is not None
    domain = Domain(torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=torch.float64))
    torch.manual_seed(0)
    x = optimize_acquisition(acqf, domain, settings=OptimizerSettings(num_restarts=4))
    axis = torch.linspace(0, 1, 401, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 1, 2)
    with torch.no_grad():
        values = acqf(grid)
        found = acqf(x.unsqueeze(0))
    assert 0.05 < grid[values.argmax(), 0, 0] < 0.95  # an interior optimum
    assert found >= values.max() - 1e-6
    assert ((x >= 0) & (x <= 1)).all()


def test_a_nan_gradient_stops_one_restart_not_the_proposal():
    # finite everywhere, but d/dx0 is NaN left of x0 = 0.5 (the classic
    # where-of-a-NaN-branch), where the maximum is; botorch alone raises
    # OptimizationGradientError there
    from botorch.acquisition import AcquisitionFunction

    class Kinked(AcquisitionFunction):
        def __init__(self):
            super().__init__(model=_model())

        def forward(self, X):
            x = X[..., 0, :]
            kink = torch.where(x[..., 0] > 0.5, (x[..., 0] - 0.5).sqrt(), 0.0)
            return -kink - ((x - 0.3) ** 2).sum(-1)

    acqf = Kinked()
    domain = Domain(torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=torch.float64))
    torch.manual_seed(0)
    x = optimize_acquisition(acqf, domain, settings=OptimizerSettings(num_restarts=4))
    assert torch.isfinite(x).all() and ((x >= 0) & (x <= 1)).all()
    assert abs(x[0, 1] - 0.3) < 1e-3  # the finite direction is still optimized
