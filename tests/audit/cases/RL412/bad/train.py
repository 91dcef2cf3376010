import tensorflow as tf

tf.random.set_seed(0)
layer = tf.keras.layers.Dense(3)
