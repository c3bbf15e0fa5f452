"""WADO-URI (PS3.18 9): objects and renderings addressed by query parameters."""
