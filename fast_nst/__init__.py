"""fast-nst: train feed-forward style-transfer networks from one painting and run them fast."""

__version__ = "0.1.0"
