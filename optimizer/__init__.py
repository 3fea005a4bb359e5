"""rackopt: provably optimal placement of AI racks in a data hall."""

__version__ = "0.2.0"
