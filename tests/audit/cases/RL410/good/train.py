import os

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import torch

torch.manual_seed(0)
torch.use_deterministic_algorithms(True)
device = torch.device("cuda")
