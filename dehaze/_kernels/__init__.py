"""Numba kernels: no validation and no policy here.

Wrappers in the public modules convert, check and allocate; kernels receive C-contiguous
float32/float64 arrays (the image-reading kernels also uint8/uint16 pixels, see
:mod:`dehaze._jit`). Annotations are for readers and mypy; Numba infers its own types.
"""

from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating[Any]]
