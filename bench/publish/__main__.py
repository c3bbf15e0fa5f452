"""``python -m bench.publish``: see bench/publish/cli.py."""

from bench.publish.cli import main

raise SystemExit(main())
