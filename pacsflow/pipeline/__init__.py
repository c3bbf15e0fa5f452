"""The ingest pipeline: records on the topics, the ingest step, outcomes, object keys."""
