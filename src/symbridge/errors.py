"""One root error for every kind of bad input; the CLI maps them to exit status 2."""


class SymbridgeError(Exception):
    """Base class: a problem with the user's input, reported as one line."""


class InputFileError(SymbridgeError):
    """The path is missing, a directory, unreadable or empty."""


class NotAnElfError(SymbridgeError):
    """The file is not an ELF file (text, PE, Mach-O, ...)."""


class UnsupportedArchitectureError(SymbridgeError):
    """A valid ELF for an architecture or class symbridge does not handle."""


class CorruptBinaryError(SymbridgeError):
    """The ELF is malformed: truncated, offsets or sizes out of bounds."""


class NoCodeError(SymbridgeError):
    """The ELF has no executable code to analyse."""


class ResourceLimitError(SymbridgeError):
    """The input exceeds a documented limit (file size, function count, ...)."""


class ModelError(SymbridgeError):
    """A model file is missing, malformed or incompatible."""


class UsageError(SymbridgeError):
    """A bad argument value (an unknown name, a malformed address, ...)."""


class ResourceLimitWarning(UserWarning):
    """An input reached a documented limit and the analysis was truncated (not an error)."""


class InputWarning(UserWarning):
    """Part of an input could not be read and was left out; the rest was analysed (not an error)."""
