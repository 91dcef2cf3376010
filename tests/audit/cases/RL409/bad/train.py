import torch

torch.manual_seed(0)
torch.use_deterministic_algorithms(False)
torch.backends.cudnn.deterministic = False
