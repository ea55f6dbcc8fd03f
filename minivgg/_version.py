"""minivgg's version, in one place every floor may read (the CLI's ``--version``, the package)."""

__version__ = "0.1.0"
