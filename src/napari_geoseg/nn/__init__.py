"""The fully invertible hyperbolic network (torch only).

- :func:`haar_coarsen`, :func:`haar_refine`: orthonormal Haar transforms.
- :class:`SymmetricBLRLayer`: ``f(Y) = -K^T relu(K Y + b)`` with block rank ``r``.
- :class:`HyperbolicNet`: the leapfrog network, with a memory-efficient backward pass.
- :class:`HyperbolicSegmenter`: the network between a learned lifting and a 1 x 1 head;
  :class:`StepNormBound` keeps its layers within the leapfrog stability bound.
- :func:`partial_cross_entropy`, :func:`expand_channels`, :func:`coarsen_labels`: training
  from sparse labels.
- Diagnostics of the paper's §2.1 and :func:`memory_estimate` (Table 1).
"""

from .blr import SymmetricBLRLayer
from .diagnostics import diagnose, energy_growth, invertibility_error, layer_step_norms, stability
from .haar import haar_coarsen, haar_refine
from .hyperbolic import HyperbolicNet
from .loss import coarsen_labels, expand_channels, partial_cross_entropy
from .memory import memory_estimate
from .segmenter import HyperbolicSegmenter, SmoothedCopies, StepNormBound

__all__ = [
    "HyperbolicNet",
    "HyperbolicSegmenter",
    "SmoothedCopies",
    "StepNormBound",
    "SymmetricBLRLayer",
    "coarsen_labels",
    "diagnose",
    "energy_growth",
    "expand_channels",
    "haar_coarsen",
    "haar_refine",
    "invertibility_error",
    "layer_step_norms",
    "memory_estimate",
    "partial_cross_entropy",
    "stability",
]
