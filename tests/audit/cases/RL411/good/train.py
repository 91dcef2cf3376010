import random

import numpy
import torch
from torch.utils.data import DataLoader

torch.manual_seed(0)
torch.use_deterministic_algorithms(True)


def seed_worker(worker_id):
    seed = torch.initial_seed() % 2**32
    numpy.random.seed(seed)
    random.seed(seed)


def loader(dataset, workers=4):
    g = torch.Generator()
    g.manual_seed(0)
    return DataLoader(dataset, batch_size=8, shuffle=True, num_workers=workers,
                      worker_init_fn=seed_worker, generator=g)
