"""The one error type for user mistakes: bad configs, bad files, bad run directories.

The CLI prints its message as one line and exits non-zero; bugs keep their tracebacks.
"""


class ArithlabError(Exception):
    """A mistake in what the user gave us, with the message that says what and where."""
