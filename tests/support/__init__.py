"""What the test tiers share: the corpus, servers and processes, HTTP helpers, the in-process
archive, backend factories. Fixtures stay in the conftest.py files; these are plain functions."""
