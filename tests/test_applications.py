"""``crowd-navigation`` and ``traffic-flow``: continuous problems without a reference. They run, stay finite, are
reproducible under a seed, read the crowd density correctly, and say clearly that they have no reference."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import mfgsolve as mfg
from mfgsolve.cli import main
from mfgsolve_problems.crowd_navigation import crowd_navigation
from mfgsolve_problems.traffic_flow import traffic_flow


class ToGoal(mfg.Policy):
    """Walk at unit speed towards the goal (clipped to the action box)."""

    def __init__(self, pb):
        self.pb = pb

    def act(self, t, x, m):
        d = torch.as_tensor(self.pb.params["goal"], dtype=x.dtype) - x
        a = d / d.norm(dim=1, keepdim=True).clamp_min(1e-9)
        return a.clamp(self.pb.action_low.to(x), self.pb.action_high.to(x))


class Cruise(mfg.Policy):
    """Accelerate towards a cruising speed of 0.8 (clipped to the action box)."""

    def __init__(self, pb):
        self.pb = pb

    def act(self, t, x, m):
        a = 5.0 * (0.8 - x[:, 1:2])
        return a.clamp(self.pb.action_low.to(x), self.pb.action_high.to(x))


CASES = {"crowd-navigation": (crowd_navigation, ToGoal), "traffic-flow": (traffic_flow, Cruise)}


def _flow(name, seed, n=512):
    factory, policy = CASES[name]
    pb = factory()
    return pb, mfg.propagate(pb, policy(pb), n=n, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", CASES)
def test_problem_protocol_and_bounds(name):
    pb = CASES[name][0]()
    assert isinstance(pb, mfg.Problem)
    assert pb.action_low.shape == (pb.p,) and pb.action_high.shape == (pb.p,)
    assert torch.all(pb.action_low < pb.action_high)
    assert pb.reference() is None
    assert pb.config()["params"]["T"] == pb.T


@pytest.mark.parametrize("name", CASES)
def test_propagation_is_finite_and_reproducible(name):
    pb, flow = _flow(name, seed=7)
    _, again = _flow(name, seed=7)
    _, other = _flow(name, seed=8)
    assert flow.x.shape == (pb.T + 1, 512, pb.n)
    assert torch.isfinite(flow.x).all()
    assert torch.equal(flow.x, again.x)  # one seed, one flow
    assert not torch.equal(flow.x, other.x)
    policy = CASES[name][1](pb)
    for t in (0, pb.T // 2, pb.T - 1):
        r = pb.reward(t, flow.x[t], policy.act(t, flow.x[t], flow), flow)
        assert r.shape == (512,) and torch.isfinite(r).all()
    assert torch.isfinite(pb.terminal_reward(flow.x[-1], flow)).all()


@pytest.mark.parametrize("name", CASES)
def test_step_is_reproducible_under_a_seed(name):
    pb, flow = _flow(name, seed=1, n=256)
    x, policy = flow.x[3], CASES[name][1](pb)
    a = policy.act(3, x, flow)
    step = [pb.step(3, x, a, flow, torch.Generator().manual_seed(11)) for _ in range(2)]
    assert torch.equal(step[0], step[1])
    assert not torch.equal(step[0], pb.step(3, x, a, flow, torch.Generator().manual_seed(12)))


@pytest.mark.parametrize("name", CASES)
def test_cli_says_there_is_no_reference(name, tmp_path, capsys):
    assert main(["reference", name, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "has no exact reference" in err and name in err
    assert not (tmp_path / "reference.json").exists()


def test_crowd_walks_to_the_goal():
    # reference: the policy's own kinematics, unit speed for T dt = 2 time units from 0 towards (3, 0); walkers
    # off the axis lose about E[y^2] / (2 * 3^2) < 0.02 to the sideways component, and the noise
    # sigma sqrt(T dt) = 0.28 plus the initial spread 0.4 average out over 512 walkers (standard error of the
    # mean ~ 0.5 / sqrt(512) = 0.022): 0.11 is the bias plus 4 standard errors
    pb, flow = _flow("crowd-navigation", seed=0)
    assert flow.mean(pb.T)[0].item() == pytest.approx(2.0, abs=0.11)


def test_crowd_density_is_the_kernel_estimate():
    # reference: for particles from N(0, s^2 I), the kernel estimate with bandwidth h is unbiased for the
    # N(0, (s^2 + h^2) I) density; its Monte-Carlo standard error is the standard deviation of the per-particle
    # kernel values over sqrt(100000) (about 0.3-0.5% of the density at the points below)
    pb = crowd_navigation()
    s, h = 0.5, pb.params["bandwidth"]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 100_000, 2, generator=gen, dtype=torch.float64) * s
    flow = mfg.ParticleFlow.uniform(x.expand(pb.T + 1, -1, -1))
    pts = torch.tensor([[0.0, 0.0], [0.3, -0.2], [0.6, 0.0]], dtype=torch.float64)
    var = s**2 + h**2
    exact = torch.exp(-(pts**2).sum(1) / (2 * var)) / (2 * math.pi * var)
    d = pts[:, None, :] - x[0][None, :, :]
    per_particle = torch.exp(-(d * d).sum(-1) / (2 * h * h)) / (2 * math.pi * h * h)
    se = per_particle.std(dim=1) / math.sqrt(x.shape[1])
    assert torch.all((pb.density(0, pts, flow) - exact).abs() <= 5 * se)  # 5 Monte-Carlo standard errors


def test_uniform_traffic_has_relative_density_one_across_the_seam():
    # reference: evenly spaced cars on the ring have relative density 1 everywhere; with spacing 1/2000 and
    # bandwidth 0.05 the periodic kernel sum deviates from it by exp(-2 pi^2 (h / spacing)^2) ~ 0 (Poisson
    # summation), so the tolerance is rounding only; points at the seam check the wrap-around
    pb = traffic_flow()
    L = pb.params["length"]
    s = torch.arange(2000, dtype=torch.float64) * L / 2000
    x = torch.stack([s, torch.zeros_like(s)], 1)
    flow = mfg.ParticleFlow.uniform(x.expand(pb.T + 1, -1, -1))
    pts = torch.tensor([[0.0, 0.0], [0.01, 0.0], [0.5, 0.0], [0.999, 0.0]], dtype=torch.float64)
    assert torch.allclose(pb.density(0, pts, flow), torch.ones(4, dtype=torch.float64), atol=1e-9)


def test_traffic_speed_respects_the_density_limit():
    # reference: the model's own constraint, 0 <= v_{t+1} <= v_free (1 - rho_t(s_t) / rho_jam)_+, s in [0, L)
    pb, flow = _flow("traffic-flow", seed=2)
    policy = Cruise(pb)
    for t in range(pb.T):
        x = flow.x[t]
        limit = pb.speed_limit(pb.density(t, x, flow))
        x_next = pb.step(t, x, policy.act(t, x, flow), flow, torch.Generator().manual_seed(t))
        assert torch.all(x_next[:, 1] >= 0) and torch.all(x_next[:, 1] <= limit + 1e-12)
        assert torch.all((x_next[:, 0] >= 0) & (x_next[:, 0] < pb.params["length"]))
    # the platoon (relative density 2 on half the ring, rho_jam = 4) starts capped near v_free / 2
    rho0 = pb.density(0, flow.x[0], flow)
    # the kernel smooths the platoon's two edges over ~h = 0.05 of its 0.5 length: mean below 2 (measured 1.86)
    assert rho0.mean().item() == pytest.approx(2.0, abs=0.2)


@pytest.mark.parametrize(
    "name, overrides, field",
    [
        ("crowd-navigation", {"goal": [1.0]}, "goal"),
        ("crowd-navigation", {"bandwidth": 0.0}, "bandwidth"),
        ("crowd-navigation", {"speed": 1.0}, "speed"),
        ("traffic-flow", {"platoon": 2.0}, "platoon"),
        ("traffic-flow", {"rho_jam": -1.0}, "rho_jam"),
        ("traffic-flow", {"T": 0}, "T"),
    ],
)
def test_bad_overrides_name_the_field(name, overrides, field):
    with pytest.raises(mfg.SpecError) as info:
        mfg.load_problem(name, overrides)
    assert info.value.field == field


@pytest.mark.parametrize("name", sorted(mfg.available_problems()))
def test_every_registered_problem_solves_with_the_ddpg_oracle(name, tmp_path):
    # issue 5: `mfgsolve solve NAME --oracle ddpg` runs on every problem (a tiny budget: the plumbing, not accuracy)
    run = tmp_path / "run"
    args = ["solve", name, "--oracle", "ddpg", "--scheme", "fp", "--iterations", "2", "--br-updates", "3",
            "--particles", "64", "--final-response-updates", "3", "--quiet", "--out", str(run)]
    assert main(args) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["iterations"] == 2 and all(np.isfinite(summary["residuals"]))
    if name in CASES:  # no exact exploitability: a lower bound by the pathwise response, stated
        assert summary["exploitability_bound"]["oracle"] == "pathwise" and np.isfinite(summary["exploitability"])
    assert (run / "flow.npz").stat().st_size > 0
