"""Residual RL on a frozen base policy: the combined policy (`policy.py`) and its training (`train.py`,
`python -m agents.residual`)."""
from agents.residual.policy import ResidualPolicy, combine, load_residual, residual_obs

__all__ = ["ResidualPolicy", "combine", "load_residual", "residual_obs"]
