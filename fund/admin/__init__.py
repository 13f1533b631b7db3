"""The back office (django-unfold): one module per part of the fund; importing registers them."""

from fund.admin import config, draws, groups, jobs, loans, members, payments  # noqa: F401
