"""A task queue for Django that keeps every task in the database."""

__all__ = ["__version__"]

__version__ = "1.0.0.dev0"
