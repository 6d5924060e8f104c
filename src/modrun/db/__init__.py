"""The metadata database: tables, migrations, inference history."""
