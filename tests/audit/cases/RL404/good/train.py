import tensorflow as tf

tf.keras.utils.set_random_seed(0)
tf.config.experimental.enable_op_determinism()
layer = tf.keras.layers.Dense(3)
