"""rl/filters.py by hand."""

import torch

from rl.filters import zero_variance


def test_zero_variance_drops_uniform_groups():
    rewards = torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.5, 0.5])
    groups = torch.tensor([7, 7, 2, 2, 5, 5, 9, 9])  # arbitrary, non-contiguous ids
    keep, metrics = zero_variance(rewards, groups)
    assert keep.tolist() == [False, False, False, False, True, True, False, False]
    assert metrics["filtered_groups"] == 3.0


def test_zero_variance_keeps_everything_informative():
    keep, metrics = zero_variance(torch.tensor([0.0, 1.0, 0.2, 0.1]), torch.tensor([0, 0, 1, 1]))
    assert keep.all() and metrics["filtered_groups"] == 0.0
