import random

from utils.seed import seed_all


def batches(items):
    seed_all(0)
    random.shuffle(items)
    return items
