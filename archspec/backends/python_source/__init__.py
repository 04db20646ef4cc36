"""Code export: a network as standalone, readable PyTorch source that needs only torch.

The source follows the same plans as the torch backend (`plan.py`), so the module it
defines has the compiled module's state_dict keys, in the same order, and computes
the same function. Its shape:

* one class per block type used. The blocks of a family share a class when their
  plans differ only in constructor values (channels, strides, kernels: these become
  the class's arguments) and in steps that some blocks leave out (a projection
  shortcut, an expansion conv, a residual sum: these become `None` modules or
  boolean flags, and a left-out step passes its first input through). Blocks of one
  family whose wiring differs in any other way, or whose own order of steps or of
  module registration a merged class would change, get classes of their own;
* a `Stem`, a `Head` (and an `AuxHead` when there are auxiliary classifiers), a
  `Stage` holding its blocks, and the model class that puts them together;
* the few archspec layers PyTorch lacks (`LayerNorm2d`, `StochasticDepth`, ...),
  copied from `ir/ops/torch_modules.py` when used, and the spec's initialisation (`init_weights`,
  copied from `torch_init.py`, with the rules as two tables).

Nothing here imports torch: writing source needs no weights.
"""


from .classes import design_class
from .model import python_source
from .names import definition_source

__all__ = ["definition_source", "design_class", "python_source"]
