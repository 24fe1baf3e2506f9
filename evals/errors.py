"""The one exception type for eval mistakes a person can fix (unknown suite, missing corpus,
bad target, unreadable results file).

Design decision: `python -m evals` and the UI catch exactly this type and show its message
without a traceback; anything else is a bug and keeps its traceback.
"""


class EvalError(Exception):
    """A user-facing error: the message says what was wrong and how to fix it."""
