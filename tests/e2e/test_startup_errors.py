"""A bad backend URL or an unreachable backend stops ``pacsflow <role>`` at start with one line.

Every role, as a real subprocess: exit status 2 for a configuration the settings refuse, 1 for
a backend that does not answer (nothing listens on port 1 of the loopback); one line on stderr
that names the variable; no traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROLES = ["serve", "stow", "qido", "wado", "worker"]
UNREACHABLE = {
    "serve": ("PACSFLOW_INDEX_URL", "http://127.0.0.1:1"),
    "stow": ("PACSFLOW_BUS_URL", "kafka://127.0.0.1:1"),
    "qido": ("PACSFLOW_INDEX_URL", "http://127.0.0.1:1"),
    "wado": ("PACSFLOW_OBJECT_STORE_URL", "s3://key:secret@127.0.0.1:1/bucket"),
    "worker": ("PACSFLOW_BUS_URL", "kafka://127.0.0.1:1"),
}


def _run(role: str, data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PACSFLOW_")}
    return subprocess.run(
        [sys.executable, "-m", "pacsflow", role, "--data-dir", str(data_dir)],
        env={**clean, "PACSFLOW_PORT": "1", **env},  # never listens: it stops before
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("role", ROLES)
def test_an_unreachable_backend_is_one_line_and_status_1(role: str, tmp_path: Path) -> None:
    name, url = UNREACHABLE[role]
    done = _run(role, tmp_path, **{name: url})
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith(f"pacsflow {role}: cannot start: ") and f"({name})" in line
    assert "secret" not in line


@pytest.mark.parametrize("role", ROLES)
def test_a_bad_backend_url_is_one_line_and_status_2(role: str, tmp_path: Path) -> None:
    done = _run(role, tmp_path, PACSFLOW_BUS_URL="amqp://broker:5672")
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith(f"pacsflow {role}: invalid configuration: PACSFLOW_BUS_URL")
    assert "kafka://" in line  # says what is accepted
