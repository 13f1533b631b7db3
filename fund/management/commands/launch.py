"""The README's first command: a working fund on this machine, web and worker running, in one step."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser, no_translations

from fund.demo import generate_fund
from fund.draw import describe, run_draw
from fund.models import User

OPERATOR = "operator"
DEMO_MEMBER_PASSWORD = "member-pass-1404"
EXAMPLE_FUND = "example fund"  # the draw's "triggered by"; the admin shows it translated


class Command(BaseCommand):
    help = "Set up the database, an operator and an example fund, then run the web server and the worker."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000, help="the web server's port on 127.0.0.1 (default 8000)")
        parser.add_argument("--no-demo", action="store_true", help="do not fill the example fund")
        parser.add_argument("--setup-only", action="store_true", help="prepare everything, start nothing")

    @no_translations  # the console speaks English, whatever the fund's language
    def handle(self, *args: object, **options: object) -> None:
        self._write_env_file()
        call_command("migrate", interactive=False, verbosity=0)
        call_command("createcachetable", verbosity=0)
        call_command("setup_fund", stdout=self.stdout)
        password = self._operator_password()
        if not options["no_demo"] and not User.objects.filter(is_member=True).exists():
            summary = generate_fund(password=DEMO_MEMBER_PASSWORD)
            # Everyone paid the last month of history, so its draw can run: the pages show a real report.
            drawn = run_draw(month=summary.last_month, triggered_by=EXAMPLE_FUND)
            self.stdout.write(
                f"Example fund: {summary.members} members, {summary.loans} loans, history to {summary.last_month}. "
                f"{describe(drawn)}"
            )
        url = f"http://127.0.0.1:{options['port']}/"
        if options["setup_only"]:
            self.stdout.write(self.style.SUCCESS("\nReady. Start Saghat with: uv run python manage.py launch"))
        else:
            self.stdout.write(self.style.SUCCESS(f"\nSaghat is at {url}  (admin: {url}admin/)"))
        self.stdout.write(f"Operator login: {OPERATOR} / {password}")
        if not options["no_demo"]:
            self.stdout.write(f"Example member login: member1 / {DEMO_MEMBER_PASSWORD}")
        if not settings.BITPIN_API_KEY:
            self.stdout.write(
                self.style.WARNING(
                    "Development mode: no BITPIN_API_KEY, so payments are marked verified at once "
                    'without asking Bitpin (note: "not checked: no Bitpin key configured").'
                )
            )
        if options["setup_only"]:
            return
        self._run(options["port"])

    def _write_env_file(self) -> None:
        """On a fresh checkout: a ``.env`` with development mode and a key of its own, which the web
        server and the worker started below, and every later command, read."""
        env_file = settings.BASE_DIR / ".env"
        if env_file.exists() or "SECRET_KEY" in os.environ:
            return
        env_file.write_text(
            "# Written by `manage.py launch` on its first run: settings for this machine only.\n"
            "# Production sets DEBUG=false and its own SECRET_KEY (README, Configuration).\n"
            "DEBUG=true\n"
            f"SECRET_KEY={secrets.token_urlsafe(48)}\n"
        )
        self.stdout.write("Wrote .env: development mode (DEBUG on) with a new SECRET_KEY.")

    def _operator_password(self) -> str:
        """Creates the operator on the first run; later runs keep its password (shown as in .env)."""
        password = os.environ.get("SAGHAT_OPERATOR_PASSWORD") or "operator-" + secrets.token_urlsafe(6)
        operator = User.objects.filter(username=OPERATOR).first()
        if operator is None:
            User.objects.create_superuser(OPERATOR, password=password, is_main=True)
            return password
        if os.environ.get("SAGHAT_OPERATOR_PASSWORD"):
            operator.set_password(password)
            operator.save(update_fields=["password"])
            return password
        return "(unchanged since the first run; set SAGHAT_OPERATOR_PASSWORD to reset it)"

    def _run(self, port: int) -> None:
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        processes = [
            subprocess.Popen([*manage, "runserver", f"127.0.0.1:{port}", "--noreload"]),
            subprocess.Popen([*manage, "qcluster"]),
        ]
        self.stdout.write("Web and worker are running; press Ctrl+C to stop both.")

        def stop(*_args: object) -> None:
            for process in processes:
                if process.poll() is None:
                    process.terminate()

        signal.signal(signal.SIGTERM, stop)
        try:
            while all(p.poll() is None for p in processes):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            stop()
            for process in processes:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()  # never leave a worker behind after launch itself ends
