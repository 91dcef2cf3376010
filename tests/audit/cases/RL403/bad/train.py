import torch as T

weights = T.randn(3, 3)
