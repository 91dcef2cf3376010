# A Trainer subclass is made somewhere: it seeds like the Trainer itself; and
# transformers.trainer_utils.set_seed is the helper transformers.set_seed re-exports.
import torch
import transformers
from transformers.trainer_utils import set_seed


class WeightedTrainer(transformers.Trainer):
    def compute_loss(self, model, inputs, return_outputs=False, **kwargs):
        return torch.tensor(0.0)


def seed_everything(seed):
    set_seed(seed)
