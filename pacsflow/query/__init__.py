"""QIDO-RS queries: the domain model, its parser, match terms and the index translators."""
