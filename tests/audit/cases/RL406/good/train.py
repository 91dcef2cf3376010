import random
import time

import jax

random.seed(1234)


def main():
    started = time.time()
    seed = 1234
    key = jax.random.PRNGKey(seed)
    return random.random(), key, started
