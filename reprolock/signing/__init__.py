"""The signer boundary: keys, detached signatures (cosign's blob format), DSSE, and
Sigstore bundles v0.3 holding either (``bundle.py``).

    >>> from reprolock.signing.keys import generate_keypair, load_signer
    >>> generate_keypair(Path("release"), passphrase=b"secret")   # doctest: +SKIP
    >>> signer = load_signer(Path("release.key"), passphrase=b"secret")  # doctest: +SKIP
    >>> signature = signer.sign(b"bytes")                              # doctest: +SKIP
"""
