"""Checks the product's Pareto/NBD (signalbox/scoring/pareto_nbd.py) against the published CDNOW
parameters (r 0.55, alpha 10.58, s 0.61, beta 11.67, LL -9595.0 on the 2,357-customer sample in
weeks; Fader, Hardie & Lee 2005):

    .venv/bin/python bench/pareto_nbd.py
"""

from __future__ import annotations

import sys

import numpy as np

from signalbox.scoring.pareto_nbd import ParetoNbdParams, fit

PUBLISHED_CDNOW = {"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 11.67, "log_likelihood": -9595.0}


def check_against_published(cache_dir: str | None = None) -> tuple[ParetoNbdParams, bool]:
    """Fit the CDNOW 1/10 sample's calibration summary (weeks, calibration ends 1997-09-30);
    True when every estimate rounds to the published value (2 decimals, LL to 1)."""
    from datasets import cdnow_published_summary

    rows = np.array([row[1:] for row in cdnow_published_summary(cache_dir)], dtype=np.float64)
    fitted = fit(rows[:, 0], rows[:, 1], rows[:, 2])
    ok = all(abs(getattr(fitted, k) - PUBLISHED_CDNOW[k]) <= 0.005 for k in ("r", "alpha", "s", "beta"))
    return fitted, ok and abs(fitted.log_likelihood - PUBLISHED_CDNOW["log_likelihood"]) <= 0.05


if __name__ == "__main__":
    fitted, ok = check_against_published()
    print(fitted, "matches" if ok else "does NOT match", PUBLISHED_CDNOW)
    sys.exit(0 if ok else 1)
