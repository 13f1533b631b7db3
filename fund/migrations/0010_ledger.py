"""Exact money on SQLite (issue 13, fault 10): every amount column becomes text there.

SQLite stored amounts in columns of NUMERIC affinity, as floats of 15 significant digits. Each
table with an amount is rebuilt with text columns (``AmountField.db_type``) and every amount is
rewritten as fixed-width text (``fund.money.money_text``). PostgreSQL's numeric(20, 8) was exact
already: nothing changes there.
"""

from django.db import migrations

from fund.money import AmountField


def amounts_as_text(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    quote = schema_editor.quote_name
    for model in apps.get_app_config("fund").get_models():
        columns = [field.column for field in model._meta.local_concrete_fields if isinstance(field, AmountField)]
        if not columns:
            continue
        schema_editor._remake_table(model)  # the columns' declared type, and so their affinity
        updates = ", ".join(f"{quote(column)} = saghat_money({quote(column)})" for column in columns)
        schema_editor.execute(f"UPDATE {quote(model._meta.db_table)} SET {updates}")


class Migration(migrations.Migration):
    dependencies = [("fund", "0009_merge_0007_ops_0008_merge_0007_imports_0007_money")]

    operations = [migrations.RunPython(amounts_as_text, migrations.RunPython.noop)]
