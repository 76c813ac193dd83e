"""Paired significance of metric differences between runs: per-user pairs, bootstrap interval, t-test, Wilcoxon, Holm."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["PairedComparison", "holm", "paired_comparison"]


@dataclass(frozen=True)
class PairedComparison:
    """One run against a baseline on the same users: means, their difference and how sure it is.

    ``ci_low``/``ci_high`` bound the mean difference (run minus baseline) at 95% by a percentile
    bootstrap over users; ``t_p`` and ``wilcoxon_p`` are two-sided paired p-values; the ``holm_``
    ones are Holm-adjusted over every run (and segment, with ``segment``) compared to the same baseline in one call.
    """

    run: str
    baseline: str
    metric: str
    users: int
    baseline_mean: float
    mean: float
    difference: float
    ci_low: float
    ci_high: float
    t_p: float
    wilcoxon_p: float
    holm_t_p: float
    holm_wilcoxon_p: float
    segment: str | None = None  # with `kgrec compare --by`: the user-activity or item-popularity segment

    @property
    def relative(self) -> float:
        """The difference as a share of the baseline mean (NaN for a zero baseline)."""
        return self.difference / self.baseline_mean if self.baseline_mean else float("nan")

    def to_dict(self) -> dict:
        """Plain fields plus ``relative``, for JSON."""
        return {**asdict(self), "relative": self.relative}


def paired_comparison(
    baseline: np.ndarray, other: np.ndarray, resamples: int = 10_000, seed: int = 0
) -> dict[str, float]:
    """Statistics of ``other - baseline`` over paired per-user values (equal length, no NaN).

    Returns ``{"baseline_mean", "mean", "difference", "ci_low", "ci_high", "t_p", "wilcoxon_p"}``.
    A difference that is zero for every user has p-value 1 (scipy's Wilcoxon refuses it).
    """
    from scipy import stats

    baseline, other = np.asarray(baseline, dtype=np.float64), np.asarray(other, dtype=np.float64)
    if baseline.shape != other.shape or baseline.ndim != 1 or len(baseline) < 2:
        raise ValueError(
            f"need two equal-length vectors of at least 2 paired values, got {baseline.shape} and {other.shape}"
        )
    differences = other - baseline
    result = {
        "baseline_mean": float(baseline.mean()),
        "mean": float(other.mean()),
        "difference": float(differences.mean()),
    }
    if not np.any(differences):
        return {**result, "ci_low": 0.0, "ci_high": 0.0, "t_p": 1.0, "wilcoxon_p": 1.0}
    interval = stats.bootstrap(
        (differences,),
        np.mean,
        n_resamples=resamples,
        confidence_level=0.95,
        method="percentile",
        rng=np.random.default_rng(seed),
        batch=max(1, 20_000_000 // len(differences)),  # ~160 MB of resampled means at once
    ).confidence_interval
    result.update(ci_low=float(interval.low), ci_high=float(interval.high))
    result["t_p"] = float(stats.ttest_rel(other, baseline).pvalue) if np.std(differences) > 0 else 0.0
    result["wilcoxon_p"] = float(stats.wilcoxon(other, baseline, zero_method="wilcox").pvalue)
    return result


def holm(pvalues: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1), in the input order."""
    order = np.argsort(pvalues, kind="stable")
    adjusted = np.empty(len(pvalues))
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[index]))
        adjusted[index] = running
    return adjusted.tolist()
