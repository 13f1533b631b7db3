#!/usr/bin/env python
"""Django's command-line utility for Saghat."""

import os
import sys
from pathlib import Path

ENV_FILE = Path(__file__).resolve().parent / ".env"


def development_defaults(command: str) -> None:
    """A checkout with no ``.env`` and no DEBUG or SECRET_KEY in the environment is a developer's
    machine: commands run in development mode there, so every command of the README works as
    written in a fresh clone (``launch`` then writes a ``.env`` of its own, fund/management/commands/launch.py).

    Production never gets these defaults: the Procfile sets DEBUG=false (and the web server does not
    start through this file at all), so there a missing SECRET_KEY still stops Saghat.
    """
    configured = ENV_FILE.exists() or any(name in os.environ for name in ("DEBUG", "SECRET_KEY", "SAGHAT_TESTING"))
    if command == "launch" or not configured:
        os.environ.setdefault("DEBUG", "true")


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    development_defaults(sys.argv[1] if len(sys.argv) > 1 else "")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
