import torch.hub

URL = "https://example.com/resnet18-f37072fd.pth"
state = torch.hub.load_state_dict_from_url(URL, check_hash=True)
net = torch.hub.load("pytorch/vision:0123456789abcdef0123456789abcdef01234567", "resnet18")
