"""Metadata export to Parquet (``pacsflow export``): see ``pacsflow.export.metadata``."""
