"""The Docker Engine boundary: every call reprolock makes to a Docker Engine, through
the docker SDK, is in :mod:`reprolock.engine.docker`.

    >>> from reprolock.engine.docker import connect, image_config   # doctest: +SKIP
    >>> image = connect().images.get("reprolock/image:latest")       # doctest: +SKIP
    >>> image_config(image)["config"]["Labels"]                      # doctest: +SKIP
"""
