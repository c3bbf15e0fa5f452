"""A CPU profile of every Python process that imports this (``bench.cpu_profile --yappi``).

Put this directory on ``PYTHONPATH`` and ``YAPPI_OUT`` in the environment: the process starts
yappi on its threads' CPU clocks, clears what it gathered on SIGUSR1 (the driver sends it once
the server is up, so that start-up is left out) and saves ``<pid>-<role>.pstat`` at exit.
"""

import atexit
import os
import signal

_OUT = os.environ.get("YAPPI_OUT")

if _OUT:
    import yappi

    yappi.set_clock_type("cpu")
    yappi.start(builtins=True, profile_threads=True)
    signal.signal(signal.SIGUSR1, lambda *_: yappi.clear_stats())

    def _save() -> None:
        yappi.stop()
        role = os.environ.get("PACSFLOW_INGEST_WORKER", "")
        yappi.get_func_stats().save(f"{_OUT}/{os.getpid()}-{role}.pstat", type="pstat")

    atexit.register(_save)
