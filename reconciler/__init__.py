"""connect-reconciler: Amazon Connect routing attributes and proficiencies as code."""

__version__ = "0.1.0"
