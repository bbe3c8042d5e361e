"""Travel velocities along rivers (Jobson 1996).

Jobson, H.E. (1996), *Prediction of traveltime and longitudinal dispersion in
rivers and streams*, USGS Water-Resources Investigations Report 96-4013. With
drainage area ``Da`` (m²), mean annual discharge ``Qa`` and discharge ``Q``
(m³/s), slope ``S`` and gravity ``g``::

    D'a = Da**1.25 * sqrt(g) / Qa          (dimensionless drainage area)
    Q'a = Q / Qa                           (relative discharge)
    Vp  = 0.094 + 0.0143 * D'a**0.919 * Q'a**-0.469 * S**0.159 * Q / Da   (peak)
    Vmp = 0.25  + 0.02   * D'a**0.919 * Q'a**-0.469 * S**0.159 * Q / Da   (most probable maximum)

Velocities in m/s. The leading edge of a plume arrives at about 0.89 of the
peak's travel time.
"""

from __future__ import annotations

import numpy as np

G = 9.80665
LEADING_EDGE_FRACTION = 0.89


def _term(area_m2: np.ndarray, qa: np.ndarray, q: np.ndarray, slope: np.ndarray) -> np.ndarray:
    area_m2, qa, q, slope = (np.asarray(v, dtype=float) for v in (area_m2, qa, q, slope))
    da = area_m2**1.25 * np.sqrt(G) / qa
    return da**0.919 * (q / qa) ** -0.469 * slope**0.159 * q / area_m2


def peak_velocity(area_m2, qa, q, slope) -> np.ndarray:
    """Jobson's peak velocity Vp (m/s)."""
    return 0.094 + 0.0143 * _term(area_m2, qa, q, slope)


def max_probable_velocity(area_m2, qa, q, slope) -> np.ndarray:
    """Jobson's most probable maximum velocity Vmp (m/s), for the earliest arrival."""
    return 0.25 + 0.02 * _term(area_m2, qa, q, slope)
