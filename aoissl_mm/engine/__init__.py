"""Runner hooks."""
from . import hooks  # noqa: F401
