"""Noise schedules (diffusers' definitions) and a plain DDIM sampler for quick evaluation."""
import math

import numpy as np
import torch

T = 1000


def alphas_cumprod(schedule):
    if schedule == "scaled_linear":  # beta_start 0.00085, beta_end 0.012 (SD)
        betas = np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, T, dtype=np.float64) ** 2
    elif schedule == "squaredcos_cap_v2":
        f = lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
        betas = np.array([min(1 - f((i + 1) / T) / f(i / T), 0.999) for i in range(T)], np.float64)
    else:
        raise ValueError(schedule)
    return torch.tensor(np.cumprod(1.0 - betas), dtype=torch.float32)


def add_noise(x0, eps, acp, t):
    a = acp[t].view(-1, 1, 1, 1)
    return a.sqrt() * x0 + (1 - a).sqrt() * eps


def v_target(x0, eps, acp, t):
    a = acp[t].view(-1, 1, 1, 1)
    return a.sqrt() * eps - (1 - a).sqrt() * x0


def ddim_timesteps(steps):
    """diffusers DDIM, timestep_spacing 'leading', steps_offset 1."""
    ratio = T // steps
    return [int(t) for t in (np.arange(0, steps) * ratio + 1)[::-1]], ratio


def nearest_t(acp_target, a):
    """Closest-variance timestep in another schedule."""
    return int(torch.argmin((acp_target - a).abs()))


@torch.no_grad()
def ddim_sample(eps_fn, shape, acp, steps=25, generator=None, x=None):
    """eps_fn(x, t_int) -> epsilon. Deterministic DDIM (eta 0), set_alpha_to_one false."""
    if x is None:
        x = torch.randn(shape, generator=generator)
    ts, ratio = ddim_timesteps(steps)
    for t in ts:
        eps = eps_fn(x, t)
        a = acp[t]
        prev = t - ratio
        ap = acp[prev] if prev >= 0 else acp[0]
        x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
        x = ap.sqrt() * x0 + (1 - ap).sqrt() * eps
    return x
