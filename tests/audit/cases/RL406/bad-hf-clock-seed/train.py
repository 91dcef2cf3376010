import time

from transformers import Trainer, TrainingArguments

args = TrainingArguments("outputs", seed=int(time.time()))
trainer = Trainer(args=args)
