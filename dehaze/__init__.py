"""dehaze: classical single-image dehazing with Numba kernels.

The dark-channel-prior pipeline (He, Sun & Tang 2009/2011) with an O(N) min filter, the
O(N) guided filter (gray and colour guides, fast subsampled variant), atmospheric light,
transmission, radiance recovery and relative depth, behind a small typed API. Images are
RGB; uint8/uint16/float32/float64 inputs keep their dtype.

>>> import numpy as np, dehaze
>>> hazy = np.full((32, 32, 3), 200, dtype=np.uint8)
>>> dehaze.dehaze(hazy).image.dtype
dtype('uint8')
"""

from __future__ import annotations

from dehaze._parallel import get_num_threads, num_threads, set_num_threads
from dehaze.atmosphere import atmospheric_light, quadtree_atmospheric_light
from dehaze.cap import ColorAttenuationPrior, cap_depth
from dehaze.clear import ClearHaze, ClearPlanes, ClearScene, dehaze
from dehaze.dcp import DarkChannelPrior
from dehaze.depth import colorize_depth, depth_map
from dehaze.filters import box_filter, min_filter
from dehaze.guided import guided_filter
from dehaze.recovery import recover
from dehaze.result import Dehazer, DehazeResult, LightScene, Method, Scene
from dehaze.robust import RobustDCP, RobustScene
from dehaze.transmission_map import dark_channel, sky_fraction, tolerance_transmission, transmission

__version__ = "0.1.0"

__all__ = [
    "ClearHaze",
    "ClearPlanes",
    "ClearScene",
    "ColorAttenuationPrior",
    "RobustDCP",
    "DarkChannelPrior",
    "DehazeResult",
    "Dehazer",
    "LightScene",
    "Method",
    "RobustScene",
    "Scene",
    "__version__",
    "atmospheric_light",
    "box_filter",
    "cap_depth",
    "colorize_depth",
    "dark_channel",
    "dehaze",
    "depth_map",
    "get_num_threads",
    "guided_filter",
    "min_filter",
    "num_threads",
    "quadtree_atmospheric_light",
    "recover",
    "set_num_threads",
    "sky_fraction",
    "tolerance_transmission",
    "transmission",
]
