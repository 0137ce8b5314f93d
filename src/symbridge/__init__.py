"""symbridge: name the functions of stripped x86-64 ELF binaries with a learned model of code.

    from symbridge import Binary, Model, transfer, analogy
    S, P = Binary("miredo"), Binary("fdupes", ignore_symbols=True)
    result = transfer(S, P)                      # the transfer JSON as a dict
    changes = diff(Binary("libfoo.so.1.0"), Binary("libfoo.so.1.1"))  # patch diff: changed, added, removed
"""

from .binary import Binary, Function
from .errors import (
    CorruptBinaryError,
    InputFileError,
    ModelError,
    NoCodeError,
    NotAnElfError,
    ResourceLimitError,
    SymbridgeError,
    UnsupportedArchitectureError,
    UsageError,
)
from .match.diff import diff
from .match.transfer import analogy, transfer
from .model.model import Model

__all__ = ["Binary", "Function", "Model", "transfer", "analogy", "diff", "SymbridgeError", "InputFileError",
           "NotAnElfError", "UnsupportedArchitectureError", "CorruptBinaryError", "NoCodeError",
           "ResourceLimitError", "ModelError", "UsageError"]
__version__ = "0.1.0"
