# The Trainer calls set_seed(args.seed) (random, NumPy, torch) when it is made.
import torch
from transformers import AutoModelForSequenceClassification, Trainer, TrainingArguments

REVISION = "0123456789abcdef0123456789abcdef01234567"


def main(train_set):
    model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased",
                                                               revision=REVISION)
    args = TrainingArguments(output_dir="outputs", seed=42, full_determinism=True)
    trainer = Trainer(model=model, args=args, train_dataset=train_set)
    trainer.train()
    return torch.cuda.is_available()
