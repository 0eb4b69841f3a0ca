"""fast-nst: train feed-forward style-transfer networks from one painting and run them fast."""

__version__ = "0.2.0"


def __getattr__(name: str) -> object:
    # Stylizer pulls in torch and onnxruntime: import it on first use, so `import fast_nst` stays light.
    if name == "Stylizer":
        from .runtime import Stylizer

        return Stylizer
    raise AttributeError(f"module 'fast_nst' has no attribute {name!r}")
