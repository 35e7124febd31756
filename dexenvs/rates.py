"""Success rates as the suite reports them: never without their episode count and 95% interval."""

from __future__ import annotations

import math

Z95 = 1.959963984540054


def wilson_interval(successes: int, episodes: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval for a success rate: unlike the normal approximation it stays inside [0, 1] and is not
    empty at 0 or n successes, which small evaluations hit often."""
    if episodes <= 0:
        return 0.0, 1.0
    p = successes / episodes
    d = 1 + z * z / episodes
    centre = (p + z * z / (2 * episodes)) / d
    half = z * math.sqrt(p * (1 - p) / episodes + z * z / (4 * episodes * episodes)) / d
    return max(0.0, centre - half), min(1.0, centre + half)


def format_rate(successes: int, episodes: int) -> str:
    """'62.5% [52.3, 71.7] (n=120)'."""
    if episodes <= 0:
        return "n/a (n=0)"
    lo, hi = wilson_interval(successes, episodes)
    return f"{100 * successes / episodes:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}] (n={episodes})"


def format_count(successes: int, episodes: int) -> str:
    """'9/10 [60-98%]': the compact form for tables of many small rates."""
    if episodes <= 0:
        return "0/0"
    lo, hi = wilson_interval(successes, episodes)
    return f"{successes}/{episodes} [{100 * lo:.0f}-{100 * hi:.0f}%]"


def rate_record(successes: int, episodes: int) -> dict:
    """A rate as JSON carries it: successes, episodes, the mean and the 95% interval."""
    lo, hi = wilson_interval(successes, episodes)
    return dict(successes=int(successes), episodes=int(episodes),
                mean=successes / episodes if episodes else None, interval=[lo, hi])


def compare(a: tuple[int, int], b: tuple[int, int]) -> str:
    """How two rates (successes, episodes) compare at 95%: whether their Wilson intervals overlap, which is what a
    reader needs before calling one better."""
    (lo_a, hi_a), (lo_b, hi_b) = wilson_interval(*a), wilson_interval(*b)
    return "intervals overlap" if lo_a <= hi_b and lo_b <= hi_a else "intervals apart"
