"""The newest migration's revision, as a constant, so that checking the schema needs no Alembic import.

A test compares it with the head that Alembic finds in migrations/versions/: a new migration updates it.
"""

HEAD = "dash_reach"
