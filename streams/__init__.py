"""Stream processing: thin loops that consume topics and call the core's pipeline steps."""
