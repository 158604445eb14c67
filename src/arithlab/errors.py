"""The one error type for user mistakes: bad configs, bad files, bad run directories.

The CLI prints its message as one line and exits non-zero; bugs keep their tracebacks.
What the user should know but need not act on is a one-line `notice`.
"""

import sys


class ArithlabError(Exception):
    """A mistake in what the user gave us, with the message that says what and where."""


def notice(message: str) -> None:
    print(f"arithlab: note: {message}", file=sys.stderr)
