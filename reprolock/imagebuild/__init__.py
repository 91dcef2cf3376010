"""Building the image from the lock: artifacts, installation, layers, assembly."""
