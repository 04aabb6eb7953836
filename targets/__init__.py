"""funcbench's built-in targets.

They are registered exactly as a third-party plugin's are: this package is
the entry point ``builtin`` of the group ``funcbench.targets``, and each
module defines its targets with the public decorators of `benchmark`.
"""

from . import arithmetic, feynman, functions, protocols, relu_study

__all__ = ["arithmetic", "feynman", "functions", "protocols", "relu_study"]
