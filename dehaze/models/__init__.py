"""Network dehazers with the published weights: AOD-Net and DehazeNet.

Both follow the :class:`dehaze.Dehazer` protocol (``method(image) -> DehazeResult``) and
run on NumPy and OpenCV only: the published PyTorch, Caffe and MATLAB weight files are
decoded directly, so neither PyTorch nor Caffe is needed (nor imported).

>>> from dehaze.models import AODNet, DehazeNet
>>> # method = AODNet.from_file("aodnet.pth"); result = method(hazy_image)
"""

from __future__ import annotations

from dehaze.models.aodnet import AODNet, AODNetWeights
from dehaze.models.dehazenet import DehazeNet, DehazeNetWeights

__all__ = ["AODNet", "AODNetWeights", "DehazeNet", "DehazeNetWeights"]
