"""The web console's use cases: the status of the archive (docs/console.md)."""
