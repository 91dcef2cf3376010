# The first argument is the output folder, not the seed: a clock there is harmless.
import time

from transformers import Trainer, TrainingArguments

args = TrainingArguments(f"outputs/run-{int(time.time())}", seed=42)
trainer = Trainer(args=args)
