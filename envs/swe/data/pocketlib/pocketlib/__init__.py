"""pocketlib: small pure-Python helpers with no dependencies."""

__version__ = "1.4.2"

__all__ = ["cache", "dates", "intervals", "numbers", "roman", "seqs", "stats", "text"]
