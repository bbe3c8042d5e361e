"""Small matplotlib helpers for notebooks: GB 3838-2002 class bands behind a series, a longitudinal profile.

matplotlib is optional: it is imported only when a helper draws, and a missing
matplotlib is a :class:`PlotDependencyError` that says what to install.

>>> from twin import plots, profiles
>>> fig, ax = plots.subplots(figsize=(9, 4))                       # doctest: +SKIP
>>> ds["As"].sel(station="GM-MIALET").plot(ax=ax)                  # doctest: +SKIP
>>> plots.class_bands(ax, "As")                                    # doctest: +SKIP
>>> plots.profile(ax, profiles.river_profile(model, 3.77, 44.16))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from twin.analysis import quality
from twin.errors import TwinError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.patches import Rectangle

#: Fill of classes I-V and worse than V (index 1-6), the colours of China's water-quality maps.
CLASS_COLOURS = ("", "#6fd3f7", "#2a7de1", "#34b233", "#f5d90a", "#f68b1f", "#e02020")
#: Band labels (matplotlib's default font has no glyphs for 劣V).
CLASS_LABELS = ("", "I", "II", "III", "IV", "V", "worse than V")


class PlotDependencyError(TwinError, ImportError):
    """matplotlib is not installed."""


def _matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise PlotDependencyError("plotting needs matplotlib, which is not installed: pip install matplotlib") from None
    return matplotlib


def subplots(*args: Any, **kwargs: Any) -> Any:
    """``matplotlib.pyplot.subplots``, with a clear error when matplotlib is missing."""
    _matplotlib()
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def bands(parameter: str, water_body: str = "river") -> list[tuple[int, float, float]]:
    """The GB 3838-2002 classes of a parameter as value ranges: :func:`twin.analysis.quality.class_ranges`.

    >>> bands("As")
    [(1, -inf, 0.05), (4, 0.05, 0.1), (6, 0.1, inf)]
    """
    return quality.class_ranges(parameter, water_body)


def class_bands(ax: Axes, parameter: str, water_body: str = "river", alpha: float = 0.22) -> list[Rectangle]:
    """Shade the GB 3838-2002 classes of a parameter behind what ``ax`` shows.

    One horizontal band per range of :func:`bands`, coloured by class and labelled at
    the right, with a dotted line at each class limit. The y-axis is widened to show
    every limit; unbounded bands fill it to the edge. Call it after plotting the data.

    Returns
    -------
    list of matplotlib.patches.Rectangle
        The bands, in the order of :func:`bands`.
    """
    _matplotlib()
    found = bands(parameter, water_body)
    edges = sorted({e for _, a, b in found for e in (a, b) if np.isfinite(e)})
    lo, hi = ax.get_ylim()
    if ax.get_yscale() == "log":
        bottom, top = min(lo, edges[0] / 1.5), max(hi, edges[-1] * 1.5)
    else:
        margin = 0.08 * ((edges[-1] - edges[0]) or abs(edges[-1]) or 1.0)
        bottom, top = min(lo, edges[0] - margin), max(hi, edges[-1] + margin)
    ax.set_ylim(bottom, top)
    across = ax.get_yaxis_transform()  # x in axes fraction, y in data
    patches = []
    for klass, a, b in found:
        a, b = max(a, bottom), min(b, top)
        patches.append(ax.axhspan(a, b, facecolor=CLASS_COLOURS[klass], alpha=alpha, linewidth=0, zorder=0))
        if b > a:
            middle = np.sqrt(a * b) if ax.get_yscale() == "log" else (a + b) / 2
            ax.text(0.995, middle, CLASS_LABELS[klass], transform=across, ha="right", va="center", fontsize=8)
    for e in edges:
        ax.axhline(e, color="0.4", linewidth=0.6, linestyle=":", zorder=0.5)
    return patches


def profile(
    ax: Axes,
    df: pd.DataFrame,
    *,
    sections: pd.DataFrame | None = None,
    sites: pd.DataFrame | None = None,
) -> Axes | None:
    """Draw a longitudinal profile (:func:`twin.analysis.profiles.river_profile`): elevation against distance.

    The measured and the conditioned elevation on ``ax``; the concentration, when the
    profile has one, on a second y-axis (returned). ``sections`` and ``sites`` (from
    :meth:`twin.model.model.Model.downstream`, with ``distance_km`` from the same start) are
    marked: sections as dashed lines named "from → to", sites as triangles.

    Returns
    -------
    matplotlib.axes.Axes or None
        The concentration axis, or None when the profile has no concentration.
    """
    _matplotlib()
    d = df["distance_km"].to_numpy()
    ax.plot(d, df["elevation_m"], color="0.55", linewidth=0.8, label="measured DEM")
    ax.plot(d, df["conditioned_elevation_m"], color="tab:blue", linewidth=1.4, label="conditioned (flow path)")
    ax.set_xlabel("distance downstream (km)")
    ax.set_ylabel("elevation (m)")
    ax.set_xlim(d[0], d[-1])
    z = df[["elevation_m", "conditioned_elevation_m"]].to_numpy(dtype=float)
    if np.isfinite(z).any():
        lo, hi = float(np.nanmin(z)), float(np.nanmax(z))
        span = (hi - lo) or 1.0
        ax.set_ylim(lo - 0.05 * span, hi + 0.25 * span)  # headroom for the labels
    if sections is not None:
        for at, a, b in zip(sections["distance_km"].astype(float), sections["from_name"], sections["to_name"]):
            ax.axvline(at, color="tab:purple", linestyle="--", linewidth=1)
            ax.annotate(
                f"{a} → {b}",
                (at, 0.97),
                xycoords=("data", "axes fraction"),
                xytext=(3, 0),
                textcoords="offset points",
                va="top",
                fontsize=8,
                color="tab:purple",
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.7, "pad": 1},
                zorder=5,
            )
    if sites is not None and len(sites):
        at = np.interp(sites["distance_km"], d, df["conditioned_elevation_m"].ffill().bfill())
        ax.plot(sites["distance_km"], at, "v", color="black", markersize=5, label="sites")
        for name, x, y in zip(sites["name"], sites["distance_km"], at):
            ax.annotate(str(name), (x, y), xytext=(3, 6), textcoords="offset points", fontsize=7, rotation=30)
    ax.legend(loc="lower left", fontsize=8)
    if "concentration_mg_l" not in df:
        return None
    conc = ax.twinx()
    c = df["concentration_mg_l"].to_numpy(dtype=float)
    conc.fill_between(d, np.nan_to_num(c), color="tab:red", alpha=0.25, linewidth=0)
    conc.plot(d, c, color="tab:red", linewidth=1.2)
    conc.set_ylabel("concentration (mg/L)", color="tab:red")
    peak = np.nanmax(c) if np.isfinite(c).any() else 0.0
    conc.set_ylim(0, 1.3 * peak if peak > 0 else 1.0)  # room above the peak for the labels
    return conc
