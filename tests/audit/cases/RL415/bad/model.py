from huggingface_hub import hf_hub_download
from transformers import AutoModel as Auto

model = Auto.from_pretrained("bert-base-uncased")
weights = hf_hub_download("org/model", "model.safetensors", revision="main")
