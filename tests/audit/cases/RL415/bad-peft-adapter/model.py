from peft import PeftModel
from transformers import AutoModelForCausalLM

COMMIT = "0123456789abcdef0123456789abcdef01234567"

base = AutoModelForCausalLM.from_pretrained("org/base-model", revision=COMMIT)
adapter = PeftModel.from_pretrained(base, "org/lora-adapter")  # the adapter is not pinned
