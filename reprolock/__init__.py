"""reprolock: lock, build and verify reproducible images for ML training code.

    $ reprolock init
    $ reprolock lock
    $ reprolock lock --check
"""

__version__ = "0.1.0"
