"""The change feed: every stored, replaced, deleted and rejected instance, in order."""
