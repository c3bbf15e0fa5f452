"""QIDO-RS Search Transaction (PS3.18 10.6) over the query model of ``pacsflow.query``."""
