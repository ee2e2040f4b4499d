"""The schema check's head constant is Alembic's head, and the always-on processes never import Alembic."""

from __future__ import annotations

import subprocess
import sys

from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from automation.store.db import alembic_config
from automation.store.schema_head import HEAD


def test_the_head_constant_is_the_newest_migration() -> None:
    cfg = alembic_config(create_engine("sqlite://"))
    assert ScriptDirectory.from_config(cfg).get_current_head() == HEAD


def test_the_worker_module_does_not_load_alembic() -> None:
    probe = "import sys, automation.worker; print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
