import jax


def sample(key):
    return jax.random.normal(key, (3,))


root = jax.random.key(0)
x = sample(jax.random.split(root)[0])
