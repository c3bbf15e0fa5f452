"""Benchmarks of pacsflow against a peer archive (not part of the test suite)."""
