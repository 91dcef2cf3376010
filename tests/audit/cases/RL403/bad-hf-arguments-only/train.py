# TrainingArguments alone seeds nothing: only the Trainer applies args.seed.
import torch
from transformers import TrainingArguments

args = TrainingArguments(output_dir="outputs", seed=42)
model = torch.nn.Linear(3, 1)
