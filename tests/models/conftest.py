"""A small random propagation graph for module tests."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import HeteroData

from kgrec.models import PropagationGraph


@pytest.fixture
def small_inputs() -> PropagationGraph:
    generator = torch.Generator().manual_seed(0)
    data = HeteroData()
    data["user"].num_nodes, data["item"].num_nodes, data["entity"].num_nodes = 5, 7, 4
    users = torch.randint(0, 5, (20,), generator=generator)
    items = torch.randint(0, 7, (20,), generator=generator)
    data["user", "interacts", "item"].edge_index = torch.stack([users, items])
    data["item", "kg", "entity"].edge_index = torch.stack([torch.arange(7), torch.arange(7) % 4])
    data["item", "kg", "entity"].relation = torch.arange(7) % 2
    return PropagationGraph.from_hetero(data, num_relations=2)
