"""CIELAB conversion and the CIEDE2000 colour difference, per pixel.

The constants and branch rules are exactly those of ``skimage.color.rgb2lab`` (sRGB, D65,
2° observer) and ``skimage.color.deltaE_ciede2000`` (kL = kC = kH = 1); the multiple-angle
cosines of the hue weighting T are expanded from one cosine and one sine (trigonometric
identities), which changes results only at rounding level. Tests compare both kernels with
scikit-image.
"""

from __future__ import annotations

import math

import numpy as np  # noqa: F401

from dehaze._jit import jit
from dehaze._kernels import Array

_COS30 = math.cos(math.radians(30.0))
_SIN30 = math.sin(math.radians(30.0))
_COS6 = math.cos(math.radians(6.0))
_SIN6 = math.sin(math.radians(6.0))
_COS63 = math.cos(math.radians(63.0))
_SIN63 = math.sin(math.radians(63.0))
_POW25_7 = 25.0**7


@jit
def _lab_f(t: float) -> float:
    if t > 0.008856:
        return float(np.cbrt(t))
    return 7.787 * t + 16.0 / 116.0


@jit
def linear_rgb_to_lab(linear: Array, out: Array) -> None:
    """Convert linear-light RGB (H×W×3, float64) to CIELAB (D65, 2°) into ``out``."""
    height, width = linear.shape[:2]
    for i in range(height):
        for j in range(width):
            r = linear[i, j, 0]
            g = linear[i, j, 1]
            b = linear[i, j, 2]
            x = 0.412453 * r + 0.357580 * g + 0.180423 * b
            y = 0.212671 * r + 0.715160 * g + 0.072169 * b
            z = 0.019334 * r + 0.119193 * g + 0.950227 * b
            fx = _lab_f(x / 0.95047)
            fy = _lab_f(y)
            fz = _lab_f(z / 1.08883)
            out[i, j, 0] = 116.0 * fy - 16.0
            out[i, j, 1] = 500.0 * (fx - fy)
            out[i, j, 2] = 200.0 * (fy - fz)


@jit
def _hue_2pi(x: float, y: float) -> float:
    h = math.atan2(y, x)
    if h < 0.0:
        h += 2.0 * math.pi
    return h


@jit
def _ciede2000(l1: float, a1: float, b1: float, l2: float, a2: float, b2: float) -> float:
    cbar = 0.5 * (math.sqrt(a1 * a1 + b1 * b1) + math.sqrt(a2 * a2 + b2 * b2))
    c7 = cbar**7
    scale = 1.0 + 0.5 * (1.0 - math.sqrt(c7 / (c7 + _POW25_7)))
    c1 = math.sqrt((a1 * scale) ** 2 + b1 * b1)
    c2 = math.sqrt((a2 * scale) ** 2 + b2 * b2)
    h1 = _hue_2pi(a1 * scale, b1)
    h2 = _hue_2pi(a2 * scale, b2)

    lbar = 0.5 * (l1 + l2)
    tmp = (lbar - 50.0) ** 2
    sl = 1.0 + 0.015 * tmp / math.sqrt(20.0 + tmp)
    l_term = (l2 - l1) / sl

    cbar_p = 0.5 * (c1 + c2)
    sc = 1.0 + 0.045 * cbar_p
    c_term = (c2 - c1) / sc

    h_diff = h2 - h1
    h_sum = h1 + h2
    cc = c1 * c2
    dh = h_diff
    if h_diff > math.pi:
        dh -= 2.0 * math.pi
    if h_diff < -math.pi:
        dh += 2.0 * math.pi
    if cc == 0.0:
        dh = 0.0
    dh_term = 2.0 * math.sqrt(cc) * math.sin(dh / 2.0)

    hbar = h_sum
    if cc != 0.0 and abs(h_diff) > math.pi:
        if h_sum < 2.0 * math.pi:
            hbar += 2.0 * math.pi
        else:
            hbar -= 2.0 * math.pi
    if cc == 0.0:
        hbar *= 2.0
    hbar *= 0.5

    # T = 1 − 0.17 cos(H − 30°) + 0.24 cos 2H + 0.32 cos(3H + 6°) − 0.20 cos(4H − 63°)
    c_1 = math.cos(hbar)
    s_1 = math.sin(hbar)
    c_2 = 2.0 * c_1 * c_1 - 1.0
    s_2 = 2.0 * s_1 * c_1
    c_3 = c_1 * (4.0 * c_1 * c_1 - 3.0)
    s_3 = s_1 * (3.0 - 4.0 * s_1 * s_1)
    c_4 = 2.0 * c_2 * c_2 - 1.0
    s_4 = 2.0 * s_2 * c_2
    t = (
        1.0
        - 0.17 * (c_1 * _COS30 + s_1 * _SIN30)
        + 0.24 * c_2
        + 0.32 * (c_3 * _COS6 - s_3 * _SIN6)
        - 0.20 * (c_4 * _COS63 + s_4 * _SIN63)
    )
    sh = 1.0 + 0.015 * cbar_p * t
    h_term = dh_term / sh

    c7p = cbar_p**7
    rc = 2.0 * math.sqrt(c7p / (c7p + _POW25_7))
    dtheta = math.radians(30.0) * math.exp(-(((math.degrees(hbar) - 275.0) / 25.0) ** 2))
    r_term = -math.sin(2.0 * dtheta) * rc * c_term * h_term

    de2 = l_term * l_term + c_term * c_term + h_term * h_term + r_term
    if de2 < 0.0:
        de2 = 0.0
    return math.sqrt(de2)


@jit
def ciede2000_lab(lab1: Array, lab2: Array, out: Array) -> None:
    """Write ΔE00 between two float64 H×W×3 CIELAB images into ``out`` (H×W)."""
    height, width = out.shape
    for i in range(height):
        for j in range(width):
            out[i, j] = _ciede2000(
                lab1[i, j, 0],
                lab1[i, j, 1],
                lab1[i, j, 2],
                lab2[i, j, 0],
                lab2[i, j, 1],
                lab2[i, j, 2],
            )
