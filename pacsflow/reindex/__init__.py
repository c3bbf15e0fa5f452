"""``pacsflow reindex``: the index rebuilt from the object store (docs/operations.md)."""
