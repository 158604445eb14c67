"""arithlab: teach arithmetic to small transformers (Lee et al. 2023, and beyond).

The Python API (api.py) is loaded on first use, so that importing one module (say
arithlab.tasks) loads only what that module needs.
"""

__version__ = "0.1.0"

__all__ = ["Answer", "ArithlabError", "Run", "evaluate", "export_hf", "load_run", "train", "__version__"]


def __getattr__(name: str):
    if name == "ArithlabError":
        from arithlab.errors import ArithlabError

        return ArithlabError
    if name in __all__:
        from arithlab import api

        return getattr(api, name)
    raise AttributeError(f"module 'arithlab' has no attribute {name!r}")
