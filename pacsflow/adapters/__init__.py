"""Adapters of the ports: embedded ones here; production ones arrive with pipeline mode."""
