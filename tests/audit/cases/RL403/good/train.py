def main():
    import torch
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    return torch.randn(3, 3)
