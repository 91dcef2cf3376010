import jax


def sample(key):
    return jax.random.normal(key, (3,))
