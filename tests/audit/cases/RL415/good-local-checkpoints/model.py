# Local folders, not Hub repositories: nothing to pin.
import os

from peft import PeftModel
from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def train(args, data):
    base = AutoModelForCausalLM.from_pretrained("org/base-model", revision=COMMIT)
    trainer = Trainer(model=base, args=TrainingArguments(output_dir="runs", seed=1),
                      train_dataset=data)
    trainer.train()
    trainer.save_model("runs/final")
    base.save_pretrained("exported")
    return base


def load(base):
    resumed = AutoModelForCausalLM.from_pretrained("outputs/checkpoint-500")  # Trainer's
    final = AutoModelForCausalLM.from_pretrained("runs/final")  # saved above
    exported = AutoModelForCausalLM.from_pretrained("exported")  # saved above
    tiny = AutoModelForCausalLM.from_pretrained("models/tiny")  # a folder of the project
    nested = AutoModelForCausalLM.from_pretrained("experiments/2024/best")  # a path
    adapter = PeftModel.from_pretrained(base, "runs/final")  # the second argument
    return resumed, final, exported, tiny, nested, adapter


def load_from_args(args, base):
    model = AutoModelForCausalLM.from_pretrained(args.output_dir)
    best = AutoModelForCausalLM.from_pretrained(os.path.join(args.root, "best"))
    adapter = PeftModel.from_pretrained(base, args.adapter_checkpoint)
    return model, best, adapter
