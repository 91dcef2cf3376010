import random
import time

import jax

random.seed(time.time())


def main():
    seed = int(time.time_ns() % 2**32)
    key = jax.random.PRNGKey(seed)
    return random.random(), key
