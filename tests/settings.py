"""The test suite's settings: the project's own, with the explicit test switch on.

``SAGHAT_TESTING=1`` lets the suite run with production-like settings (DEBUG off) and the
development key; a server never has it. pytest-django imports this module (pyproject.toml); a
worker the tests start gets the same variable in its environment (tests/fixtures/worker.py).
"""

import os

os.environ.setdefault("SAGHAT_TESTING", "1")

from config import settings as project  # noqa: E402

# Every setting of the project's module (its __all__ names only UNFOLD, so no star import).
globals().update({name: value for name, value in vars(project).items() if name.isupper()})
