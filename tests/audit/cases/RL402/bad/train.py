import numpy as np

noise = np.random.rand(3)
rng = np.random.default_rng()
