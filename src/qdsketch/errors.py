"""The errors qdsketch raises for bad input, each with a fix.

The CLI turns any ``QdsketchError`` into one line, ``Error: <message>``, and
exits non-zero; anything else is a bug and keeps its traceback.
"""


class QdsketchError(Exception):
    """Base class: ``message`` says what is wrong, ``hint`` how to fix it."""

    def __init__(self, message: str, hint: str | None = None):
        self.message = message
        self.hint = hint[:1].upper() + hint[1:] if hint else None
        super().__init__(f"{message}. {self.hint}" if hint else message)


class UnknownClassError(QdsketchError):
    """A class name that is not one of Google's categories (or of a model's)."""


class DataError(QdsketchError):
    """Missing, empty or malformed drawings or dataset files."""


class DownloadError(QdsketchError):
    """A download that failed for good (404, retries exhausted, ...)."""


class CheckpointError(QdsketchError):
    """A missing, truncated or foreign checkpoint file."""
