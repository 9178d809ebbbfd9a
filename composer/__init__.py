"""composer: author, check, render and deliver a curated link newsletter."""

__version__ = "0.1.0"
