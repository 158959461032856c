"""harness: a distributed benchmark harness for Python concurrency models."""

__version__ = "0.1.0"
