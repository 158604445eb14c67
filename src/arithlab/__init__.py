"""arithlab: teach arithmetic to small transformers (Lee et al. 2023, and beyond)."""

__version__ = "0.1.0"

from arithlab.api import Answer, Run, evaluate, export_hf, load_run, train  # noqa: E402
from arithlab.errors import ArithlabError  # noqa: E402

__all__ = ["Answer", "ArithlabError", "Run", "evaluate", "export_hf", "load_run", "train", "__version__"]
