import torch

torch.manual_seed(0)
torch.use_deterministic_algorithms(True)  # makes cuDNN deterministic too
model = torch.nn.Linear(3, 1)
