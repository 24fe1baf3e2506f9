"""The one exception type for mistakes a person can fix (bad flags, missing files, bad data).

Design decision: `python -m training` catches exactly this type and prints its message
without a traceback; anything else is a bug and keeps its traceback.
"""


class TrainingError(Exception):
    """A user-facing error: the message says what was wrong and how to fix it."""
