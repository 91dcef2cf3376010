# cudnn.deterministic covers cuDNN's convolutions only; scatter/index_add stay
# nondeterministic without torch.use_deterministic_algorithms(True).
import torch

torch.manual_seed(0)
torch.backends.cudnn.deterministic = True
model = torch.nn.Linear(3, 1)
