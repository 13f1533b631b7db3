"""Every command the README names runs as written in a fresh clone: no .env, no DEBUG, no SECRET_KEY.

The clone is a copy of the repository's tracked files in a temporary directory, run with this
interpreter (the uv environment) and an environment stripped of every Saghat setting.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ("DEBUG", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "SAGHAT_TESTING", "SAGHAT_TEST_DB",
            "DJANGO_SETTINGS_MODULE", "BITPIN_API_KEY", "SAGHAT_OPERATOR_PASSWORD")  # fmt: skip

# The README's commands: their --help must work before anything else has run.
DOCUMENTED = [
    ["manage.py", "launch", "--help"],
    ["manage.py", "setup_fund", "--help"],
    ["manage.py", "seed_demo", "--help"],
    ["manage.py", "import_history", "--help"],
    ["manage.py", "create_inspector_group", "--help"],
    ["manage.py", "update_translations", "--help"],
    ["manage.py", "qcluster", "--help"],
    ["manage.py", "collectstatic", "--help"],
    ["manage.py", "migrate", "--help"],
    ["manage.py", "shell", "--help"],
    ["manage.py", "check"],
    ["-m", "tests.perf.run", "--help"],
]


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the tracked files cannot be listed")
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    target = tmp_path_factory.mktemp("clone")
    for name in filter(None, files.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    assert not (target / ".env").exists()
    return target


def run(clone: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if name not in SETTINGS}
    return subprocess.run(
        [sys.executable, *args], cwd=clone, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_every_documented_command_answers_its_help_in_a_fresh_clone(clone):
    for command in DOCUMENTED:
        result = run(clone, *command)
        assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stderr[-2000:]}"
        assert "SECRET_KEY" not in result.stderr
    assert not (clone / ".env").exists()  # only launch writes one


def test_launch_writes_a_development_env_and_then_every_command_runs(clone):
    result = run(clone, "manage.py", "launch", "--setup-only", "--no-demo")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Saghat is at" not in result.stdout  # it started nothing
    assert "manage.py launch" in result.stdout
    assert "Development mode" in result.stdout  # no Bitpin key: payments are not checked
    env_file = (clone / ".env").read_text()
    assert "DEBUG=true" in env_file
    key = next(line.split("=", 1)[1] for line in env_file.splitlines() if line.startswith("SECRET_KEY="))
    assert len(key) >= 32 and key != "saghat-development-only-secret-key-change-me"

    for command in (
        ["manage.py", "setup_fund", "--min-fee", "20", "--max-months", "24", "--min-payment", "20"],
        ["manage.py", "create_inspector_group"],
        ["manage.py", "import_history", "members", "tests/samples/members.csv", "--dry-run"],
        ["manage.py", "shell", "-c", "from fund.models import FundConfig; print(FundConfig.load())"],
    ):
        result = run(clone, *command)
        assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stderr[-2000:]}"
        assert "ImproperlyConfigured" not in result.stderr


def test_production_still_refuses_to_start_without_a_key(clone):
    env_file = clone / ".env"
    saved = env_file.read_text() if env_file.exists() else None
    env_file.unlink(missing_ok=True)
    try:
        env = {name: value for name, value in os.environ.items() if name not in SETTINGS}
        result = subprocess.run(
            [sys.executable, "manage.py", "check"],
            cwd=clone,
            env={**env, "DEBUG": "false"},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode != 0 and "SECRET_KEY" in result.stderr
    finally:
        if saved is not None:
            env_file.write_text(saved)
