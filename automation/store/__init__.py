"""The database: schema, migrations, engine and sessions, dialect helpers, suppressions."""
