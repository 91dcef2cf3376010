import torch
from torch.utils.data import DataLoader

torch.use_deterministic_algorithms(True)


def loader(dataset, workers=4):
    return DataLoader(dataset, batch_size=8, shuffle=True, num_workers=workers)
