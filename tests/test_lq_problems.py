r"""``systemic-risk``, ``price-impact``, ``flocking``: the discrete references against an independent solver, and
their first-order convergence to the continuous-time closed forms.

Closed forms. Every Riccati equation here is scalar with constant coefficients,
:math:`c\dot y = (y - r_+)(y - r_-)`, :math:`y(T_h) = y_T`, whose solution and integral are explicit:

.. math::

    y(t) = r_- + \frac{r_+ - r_-}{1 - K e^{-\lambda (T_h - t)}}, \quad
    K = \frac{y_T - r_+}{y_T - r_-}, \quad \lambda = \frac{r_+ - r_-}{c}, \qquad
    \int y = r_- t + (r_+ - r_-)\Big(t - \tfrac{1}{\lambda}\log\big|1 - K e^{-\lambda(T_h - t)}\big|\Big).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from _direct_lq import DirectModel, solve_direct
from scipy.integrate import quad

import mfgsolve as mfg
from mfgsolve.cli import main
from mfgsolve_problems.flocking import flocking
from mfgsolve_problems.price_impact import price_impact
from mfgsolve_problems.systemic_risk import systemic_risk

#: dt values of the convergence fits (horizon / dt integral for every horizon used).
DTS = np.array([0.05, 0.025, 0.0125, 0.00625])
#: First order means error = C dt + O(dt^2); over dt in [0.00625, 0.05] the O(dt^2) term moves the fitted slope
#: by a few hundredths (measured 0.97-1.02), while a zeroth- or second-order error would fit 0 or 2.
SLOPE_TOL = 0.1


def _slope(errors: list[float]) -> float:
    return float(np.polyfit(np.log(DTS), np.log(errors), 1)[0])


def _riccati(t, T_h: float, c: float, r_plus: float, r_minus: float, y_T: float):
    """Solution of ``c y' = (y - r_plus)(y - r_minus)``, ``y(T_h) = y_T`` (module docstring)."""
    lam, K = (r_plus - r_minus) / c, (y_T - r_plus) / (y_T - r_minus)
    return r_minus + (r_plus - r_minus) / (1.0 - K * np.exp(-lam * (T_h - np.asarray(t, dtype=float))))


def _riccati_integral(t, T_h: float, c: float, r_plus: float, r_minus: float, y_T: float):
    """``int_0^t y`` for :func:`_riccati`."""
    lam, K = (r_plus - r_minus) / c, (y_T - r_plus) / (y_T - r_minus)

    def F(s):
        return r_minus * s + (r_plus - r_minus) * (s - np.log(np.abs(1.0 - K * np.exp(-lam * (T_h - s)))) / lam)

    return F(np.asarray(t, dtype=float)) - F(0.0)


def test_riccati_closed_form_solves_its_ode():
    # reference: the ODE itself (central differences, error ~1e-10) and scipy quadrature of the solution
    T_h, c, rp, rm, yT = 1.3, 0.7, 1.4, -0.9, 2.5
    t = np.linspace(0.0, T_h, 7)
    h = 1e-5
    dy = (_riccati(t + h, T_h, c, rp, rm, yT) - _riccati(t - h, T_h, c, rp, rm, yT)) / (2 * h)
    y = _riccati(t, T_h, c, rp, rm, yT)
    assert np.allclose(c * dy, (y - rp) * (y - rm), atol=1e-8)  # central-difference error ~ h^2 * y''' ~ 1e-9
    assert _riccati(T_h, T_h, c, rp, rm, yT) == pytest.approx(yT, abs=1e-14)
    integral = quad(lambda s: _riccati(s, T_h, c, rp, rm, yT), 0.0, 0.9, epsabs=1e-13)[0]
    assert _riccati_integral(0.9, T_h, c, rp, rm, yT) == pytest.approx(integral, abs=1e-12)  # quad's tolerance


# --- the discrete models written from the formulas (not from the LQ terms) ---------------------------


def _systemic_risk_model(a=1.0, q=0.8, eps=2.0, c=1.0, sigma=0.5, horizon=1.0, dt=0.05, x0_mean=0.5, x0_var=0.2):
    return DirectModel(
        T=round(horizon / dt), n=1, p=1, mu0=np.array([x0_mean]), Sigma0=np.array([[x0_var]]),
        Sigma_w=np.array([[sigma**2 * dt]]),
        drift=lambda t, x, al, m: x + dt * (a * (m - x) + al),
        stage=lambda t, x, al, m, m_next: (dt * (al**2 / 2 - q * al * (m - x) + eps / 2 * (m - x) ** 2)).sum(),
        final=lambda x, m: (c / 2 * (m - x) ** 2).sum(),
    )


def _price_impact_model(c_alpha=1.0, c_X=0.5, c_g=2.0, gamma=1.5, sigma=0.3, horizon=1.0, dt=0.05, x0_mean=1.0,
                        x0_var=0.1):
    return DirectModel(
        T=round(horizon / dt), n=1, p=1, mu0=np.array([x0_mean]), Sigma0=np.array([[x0_var]]),
        Sigma_w=np.array([[sigma**2 * dt]]),
        drift=lambda t, x, al, m: x + dt * al,
        # nu_t = (m_{t+1} - m_t) / dt, the population's mean trading rate
        stage=lambda t, x, al, m, m_next: (dt * (c_alpha / 2 * al**2 + c_X / 2 * x**2
                                                 - gamma * x * (m_next - m) / dt)).sum(),
        final=lambda x, m: (c_g / 2 * x**2).sum(),
    )


def _flocking_model(r=0.5, sigma=0.2, horizon=2.0, dt=0.05, v0_mean=(0.3, -0.2), v0_var=0.5):
    return DirectModel(
        T=round(horizon / dt), n=2, p=2, mu0=np.array(v0_mean), Sigma0=v0_var * np.eye(2),
        Sigma_w=sigma**2 * dt * np.eye(2),
        drift=lambda t, v, u, m: v + dt * u,
        stage=lambda t, v, u, m, m_next: dt * (((v - m) ** 2).sum() + r * (u**2).sum()),
        final=lambda v, m: 0.0 * v.sum(),
    )


CASES = {
    "systemic-risk": (systemic_risk, _systemic_risk_model),
    "price-impact": (price_impact, _price_impact_model),
    "flocking": (flocking, _flocking_model),
}


@pytest.mark.parametrize("name", CASES)
def test_reference_agrees_with_the_direct_forward_backward_solve(name):
    # reference: tests/_direct_lq.py, one KKT linear system per quantity written from the model's own formulas;
    # acceptance 1e-6 (issue 5); both routes are exact linear algebra, measured agreement ~1e-15
    factory, model = CASES[name]
    ref = factory().reference()
    direct = solve_direct(model())
    assert abs(ref.J - direct.J) < 1e-6
    assert np.max(np.abs(ref.mean - direct.mean)) < 1e-6
    assert np.max(np.abs(ref.K - direct.K)) < 1e-6
    assert np.max(np.abs(ref.k - direct.k)) < 1e-6
    assert np.max(np.abs(ref.cov - direct.cov)) < 1e-6


@pytest.mark.parametrize("name", CASES)
def test_reference_agrees_with_the_direct_solve_off_defaults(name):
    # same reference as above on other parameters, so no default value is hard-wired in either route
    overrides = {
        "systemic-risk": {"a": 0.5, "q": 0.3, "eps": 1.0, "c": 2.0, "dt": 0.1, "x0_mean": -0.4},
        "price-impact": {"c_alpha": 2.0, "gamma": -0.5, "c_g": 0.5, "dt": 0.1, "x0_mean": 3.0},
        "flocking": {"r": 2.0, "horizon": 1.0, "dt": 0.1, "v0_mean": [1.0, 2.0]},
    }[name]
    factory, model = CASES[name]
    ref = factory(**overrides).reference()
    direct = solve_direct(model(**overrides))
    assert abs(ref.J - direct.J) < 1e-6  # exact linear algebra on both sides
    assert np.max(np.abs(ref.mean - direct.mean)) < 1e-6
    assert np.max(np.abs(ref.K - direct.K)) < 1e-6


def test_systemic_risk_converges_at_first_order():
    # reference: Carmona-Fouque-Sun (2015): alpha* = (q + eta_t)(m - X), eta' = 2(a+q)eta + eta^2 - (eps - q^2),
    # eta_T = c; m_t = E[X_0]; J = eta_0 Var(X_0)/2 + sigma^2/2 int_0^T eta
    a, q, eps, c, sigma, T_h, m0, v0 = 1.0, 0.8, 2.0, 1.0, 0.5, 1.0, 0.5, 0.2
    root = math.sqrt((a + q) ** 2 + eps - q**2)
    eta = dict(T_h=T_h, c=1.0, r_plus=-(a + q) + root, r_minus=-(a + q) - root, y_T=c)
    J = _riccati(0.0, **eta) * v0 / 2 + sigma**2 / 2 * _riccati_integral(T_h, **eta)
    err_gain, err_J = [], []
    for dt in DTS:
        ref = systemic_risk(dt=float(dt)).reference()
        t = dt * np.arange(ref.K.shape[0])
        gain = q + _riccati(t, **eta)
        err_gain.append(np.max(np.abs(ref.K[:, 0, 0] - gain)))
        assert np.max(np.abs(ref.k[:, 0] + gain * m0)) == pytest.approx(err_gain[-1] * m0, rel=1e-9)  # k = -K m
        assert np.max(np.abs(ref.mean - m0)) < 1e-12  # the mean is constant, exactly, in discrete time too
        err_J.append(abs(ref.J - J))
    assert _slope(err_gain) == pytest.approx(1.0, abs=SLOPE_TOL)
    assert _slope(err_J) == pytest.approx(1.0, abs=SLOPE_TOL)
    assert err_gain[-1] < 0.004 and err_J[-1] < 0.001  # the errors do vanish: C dt, C ~ 0.42 (gain), 0.1 (J)


def test_price_impact_converges_at_first_order():
    # reference: Carmona-Delarue / Cardaliaguet-Lehalle: alpha* = -(eta X + (eta_bar - eta) m)/c_alpha with
    # c_alpha eta' = eta^2 - c_alpha c_X, c_alpha eta_bar' = eta_bar^2 - gamma eta_bar - c_alpha c_X,
    # eta_T = eta_bar_T = c_g; m_t = m_0 exp(-int_0^t eta_bar / c_alpha);
    # J = eta_0 E[X_0^2]/2 + h_0 m_0 + int_0^T (sigma^2 eta/2 - h^2/(2 c_alpha)), h = (eta_bar - eta) m
    ca, cX, cg, gamma, sigma, T_h, m0, v0 = 1.0, 0.5, 2.0, 1.5, 0.3, 1.0, 1.0, 0.1

    def roots(g):
        d = math.sqrt(g**2 + 4 * ca * cX)
        return dict(T_h=T_h, c=ca, r_plus=(g + d) / 2, r_minus=(g - d) / 2, y_T=cg)

    eta, eta_bar = roots(0.0), roots(gamma)

    def mean(t):
        return m0 * np.exp(-_riccati_integral(t, **eta_bar) / ca)

    def h(t):
        return (_riccati(t, **eta_bar) - _riccati(t, **eta)) * mean(t)

    chi0 = quad(lambda s: sigma**2 * _riccati(s, **eta) / 2 - h(s) ** 2 / (2 * ca), 0.0, T_h, epsabs=1e-13)[0]
    J = _riccati(0.0, **eta) / 2 * (v0 + m0**2) + h(0.0) * m0 + chi0
    err_gain, err_mean, err_J = [], [], []
    for dt in DTS:
        ref = price_impact(dt=float(dt)).reference()
        T = ref.K.shape[0]
        err_gain.append(np.max(np.abs(ref.K[:, 0, 0] - _riccati(dt * np.arange(T), **eta) / ca)))
        err_mean.append(np.max(np.abs(ref.mean[:, 0] - mean(dt * np.arange(T + 1)))))
        err_J.append(abs(ref.J - J))
    for errors in (err_gain, err_mean, err_J):
        assert _slope(errors) == pytest.approx(1.0, abs=SLOPE_TOL)
        assert errors[-1] < 0.005  # the errors do vanish: C dt with C <= 0.56 (measured) at dt = 0.00625


def test_flocking_converges_at_first_order():
    # reference: the gain k_t = sqrt(r) tanh((T-t)/sqrt(r)) / r, u* = -k_t (v - m), m constant;
    # J = p_0 tr(Sigma_0) + 2 sigma^2 int_0^T p with p = r k, int_0^T p = r log cosh(T / sqrt(r))
    r, sigma, T_h, v0 = 0.5, 0.2, 2.0, 0.5
    mu0 = np.array([0.3, -0.2])
    J = math.sqrt(r) * math.tanh(T_h / math.sqrt(r)) * 2 * v0 + 2 * sigma**2 * r * math.log(math.cosh(T_h / math.sqrt(r)))
    err_gain, err_J = [], []
    for dt in DTS:
        ref = flocking(dt=float(dt)).reference()
        t = dt * np.arange(ref.K.shape[0])
        gain = math.sqrt(r) * np.tanh((T_h - t) / math.sqrt(r)) / r
        err_gain.append(np.max(np.abs(ref.K - gain[:, None, None] * np.eye(2))))
        assert np.max(np.abs(ref.mean - mu0)) < 1e-12  # the mean velocity is constant, exactly
        err_J.append(abs(ref.J - J))
    assert _slope(err_gain) == pytest.approx(1.0, abs=SLOPE_TOL)
    assert _slope(err_J) == pytest.approx(1.0, abs=SLOPE_TOL)
    assert err_gain[-1] < 0.02 and err_J[-1] < 0.005  # C dt, C = 1/r = 2 for the gain (last step: 0 vs dt/r)


# --- registration, overrides, CLI ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", CASES)
def test_cli_reference_writes_the_lq_reference(name, tmp_path, capsys):
    assert main(["reference", name, "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "reference.json").read_text())
    ref = mfg.load_problem(name).reference()
    assert data["J"] == pytest.approx(ref.J, abs=1e-12)  # the JSON round trip of the same float
    assert np.allclose(data["mean"], ref.mean, rtol=0, atol=1e-12)


def test_cli_overrides_reach_the_factory(tmp_path, capsys):
    assert main(["reference", "systemic-risk", "--set", "dt=0.1", "--set", "q=0.5", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "reference.json").read_text())
    assert len(data["mean"]) == 11  # horizon 1 / dt 0.1 = 10 steps
    assert data["J"] == pytest.approx(systemic_risk(dt=0.1, q=0.5).reference().J, abs=1e-12)


@pytest.mark.parametrize(
    "name, overrides, field",
    [
        ("systemic-risk", {"beta": 1.0}, "beta"),
        ("systemic-risk", {"sigma": -1.0}, "sigma"),
        ("systemic-risk", {"q": "high"}, "q"),
        ("systemic-risk", {"q": 2.0}, "eps"),  # eps < q^2: the running cost is not convex
        ("systemic-risk", {"dt": 0.3}, "dt"),  # horizon / dt not an integer
        ("price-impact", {"c_alpha": 0.0}, "c_alpha"),
        ("price-impact", {"x0_var": -0.1}, "x0_var"),
        ("price-impact", {"gamma": float("nan")}, "gamma"),
        ("flocking", {"v0_mean": [1.0]}, "v0_mean"),
        ("flocking", {"r": True}, "r"),
        ("flocking", {"horizon": 0}, "horizon"),
    ],
)
def test_bad_overrides_name_the_field(name, overrides, field):
    with pytest.raises(mfg.SpecError) as info:
        mfg.load_problem(name, overrides)
    assert info.value.field == field


def test_cli_bad_override_is_one_line_exit_2(tmp_path, capsys):
    assert main(["reference", "flocking", "--set", "r=-1", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "r:" in err
    assert not (tmp_path / "reference.json").exists()


def test_problems_simulate_their_own_lq_spec():
    # reference: the exact Gaussian flow of the equilibrium policy; 20000 particles, standard error of the mean
    # ~ sqrt(var / 20000) <= 0.005, so 5 standard errors = 0.025
    pb = flocking()
    ref = pb.reference()
    flow = mfg.propagate(pb, mfg.AffinePolicy(ref.K, ref.k), n=20000, generator=torch.Generator().manual_seed(0))
    assert np.max(np.abs(flow.means().numpy() - ref.mean)) < 0.025
