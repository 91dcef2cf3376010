"""The lock manifest (``reprolock.lock.json``): model, reading, writing, freshness."""
