"""The workflows: one module per command that does work (lock, build, run, verify, init,
inspect). Each takes the boundaries it needs (an image source, a resolver, an index, an
output, a signer) and returns a result the CLI prints; none reads argv or prints."""
