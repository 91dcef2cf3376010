import torch
from torch.backends import cudnn

torch.manual_seed(0)
torch.use_deterministic_algorithms(True)
cudnn.benchmark = True
