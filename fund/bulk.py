"""Writing many rows at once with PostgreSQL's COPY: the history import and the example fund."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import connection
from django.db.models import Model


def copy_rows(model: type[Model], rows: Iterable[dict[str, Any]]) -> None:
    """Write rows with PostgreSQL's COPY. Each row gives database-ready values by attribute name
    (``member_id``, a month as its integer); a field it leaves out gets the field's default."""
    fields = [field_ for field_ in model._meta.concrete_fields if not field_.primary_key]
    defaults = {field_.attname: field_.get_db_prep_save(field_.get_default(), connection) for field_ in fields}
    names = [field_.attname for field_ in fields]
    columns = ", ".join(connection.ops.quote_name(field_.column) for field_ in fields)
    sql = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({columns}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row([row[name] if name in row else defaults[name] for name in names])
