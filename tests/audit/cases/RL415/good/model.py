from huggingface_hub import hf_hub_download
from transformers import AutoModel as Auto

REVISION = "0123456789abcdef0123456789abcdef01234567"
model = Auto.from_pretrained("bert-base-uncased", revision=REVISION)
local = Auto.from_pretrained("./checkpoints/last")
weights = hf_hub_download("org/model", "model.safetensors", revision="0123456789abcdef0123456789abcdef01234567")
