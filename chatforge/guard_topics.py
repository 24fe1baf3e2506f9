"""The Python-documentation topics of the guard's benign questions, split once for all.

Design decisions:
- Training writes benign questions on one half of the topics and the `guardrails` eval asks
  about the other half, so a false-positive rate is measured on topics the classifier never
  saw. Both halves come from this one list, so editing it can never leak an eval topic
  into training (the two parts must not import each other, hence this shared module).
"""

from __future__ import annotations

PY_TOPICS = [
    "list comprehensions", "the with statement", "decorators", "generators", "f-strings",
    "dataclasses", "the GIL", "asyncio tasks", "context managers", "type hints",
    "the pathlib module", "json.dumps", "dict.get", "the collections module", "enumerate",
    "zip", "sorted with a key", "exceptions", "the logging module", "virtual environments",
    "pip", "the re module", "string formatting", "slicing", "the itertools module",
    "functools.lru_cache", "sets", "tuples", "lambda functions", "the subprocess module",
    "threading", "multiprocessing", "the datetime module", "argparse", "unittest",
    "the os.path module", "global variables", "closures", "the __init__ method",
    "class inheritance", "abstract base classes", "the typing module", "bytes and str",
    "unicode strings", "the csv module", "sqlite3", "the random module", "math.floor",
    "integer division", "the walrus operator", "match statements", "iterators",
    "the sys module", "shutil.copy", "tempfile", "the struct module", "pickle",
    "the heapq module", "bisect", "the array module", "weakref", "the gc module",
    "property decorators", "__slots__", "metaclasses", "the enum module", "the abc module",
    "the decimal module", "fractions", "the statistics module", "urllib.request",
    "the http.server module", "socket programming", "the select module", "the signal module",
    "the time module", "time.sleep", "the copy module", "deepcopy", "the inspect module",
    "importlib", "packages and __init__.py", "relative imports", "the zipfile module",
    "the tarfile module", "gzip", "the hashlib module", "the secrets module", "uuid",
    "the textwrap module", "string methods", "str.split", "str.join", "list.sort",
    "dictionary views", "frozenset", "the operator module", "the contextlib module",
    "the traceback module", "the warnings module", "the pdb debugger", "doctest",
]  # fmt: skip
TRAIN_TOPICS = PY_TOPICS[0::2]
EVAL_TOPICS = PY_TOPICS[1::2]
