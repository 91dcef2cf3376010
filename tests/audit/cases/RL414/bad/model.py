import torch.hub

URL = "https://example.com/resnet18-f37072fd.pth"
state = torch.hub.load_state_dict_from_url(URL)
net = torch.hub.load("pytorch/vision", "resnet18")
