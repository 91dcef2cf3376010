import numpy as np
from numpy import random as npr

npr.seed(0)
noise = npr.rand(3)
rng = np.random.default_rng(42)
