"""The project's one exception type for bad input, so the CLI can print it as one line."""


class InputError(ValueError):
    """Raised when an argument, array or file given to lsalsa is unusable."""
