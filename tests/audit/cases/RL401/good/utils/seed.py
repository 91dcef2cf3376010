import random


def seed_all(seed):
    random.seed(seed)
