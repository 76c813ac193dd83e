"""Sampled subgraphs of the user-item graph: a batch's users and items plus a bounded L-hop neighbourhood.

The mini-batch path (``train.batching=sampled``) propagates over these instead of the whole graph, so
a step's memory is set by the batch size and the fan-out, not by the graph. Sampling is layer-wise as
in GraphSAGE and PyG's ``NeighborLoader``: each hop draws at most ``fanout`` neighbours of the nodes the
previous hop added; a node with more neighbours than that gets ``fanout`` draws with replacement whose
edge weights are scaled by ``degree / fanout``, so each sampled aggregation is an unbiased estimate of
LightGCN's full one. (PyG's own sampler needs pyg-lib or torch-sparse, which have no wheels for every
torch; this is plain torch over the CSR adjacency the full-batch path already holds.)
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import torch

from kgrec.models.graph_inputs import PropagationGraph

__all__ = ["Subgraph", "sample_subgraph"]


class Subgraph(NamedTuple):
    """A sampled subgraph in local indices.

    Attributes:
        nodes: ``(N,)`` global node ids (users ``0..U-1``, then items ``U..``), users first, each sorted.
        num_users: How many of ``nodes`` are users.
        adj: ``(N, N)`` sparse CSR propagation matrix over ``nodes`` (row = target), LightGCN-normalised.
    """

    nodes: torch.Tensor
    num_users: int
    adj: torch.Tensor

    def local(self, global_ids: torch.Tensor) -> torch.Tensor:
        """Local positions of ``global_ids`` (which must be in ``nodes``)."""
        return torch.searchsorted(self.nodes, global_ids)

    @property
    def user_ids(self) -> torch.Tensor:
        """Global user indices in the subgraph."""
        return self.nodes[: self.num_users]

    def item_ids(self, num_users: int) -> torch.Tensor:
        """Item indices (0-based) in the subgraph."""
        return self.nodes[self.num_users :] - num_users


def _sample_hop(prop_graph: PropagationGraph, targets: torch.Tensor, fanout: int, generator: torch.Generator):
    """Edges ``(source, target, weight)`` into ``targets``: all of a node's edges up to ``fanout``, else ``fanout`` draws."""
    crow, col, value = prop_graph.ui_adj.crow_indices(), prop_graph.ui_adj.col_indices(), prop_graph.ui_adj.values()
    start, degree = crow[targets], crow[targets + 1] - crow[targets]
    small = degree <= fanout
    # Nodes with few neighbours: every edge, exactly.
    few, few_degree = targets[small], degree[small]
    owner = torch.repeat_interleave(torch.arange(len(few), device=targets.device), few_degree)
    offset = torch.arange(int(few_degree.sum()), device=targets.device) - torch.repeat_interleave(
        torch.cumsum(few_degree, 0) - few_degree, few_degree
    )
    position = start[small][owner] + offset
    sources, dests, weights = [col[position]], [few[owner]], [value[position]]
    # Nodes with many: `fanout` draws with replacement, each weighing degree / fanout of its edge.
    many, many_degree = targets[~small], degree[~small]
    if len(many):
        draws = (torch.rand(len(many), fanout, generator=generator).to(targets.device) * many_degree[:, None]).long()
        position = (start[~small][:, None] + draws).flatten()
        sources.append(col[position])
        dests.append(many.repeat_interleave(fanout))
        weights.append(value[position] * (many_degree.float() / fanout).repeat_interleave(fanout))
    return torch.cat(sources), torch.cat(dests), torch.cat(weights)


def sample_subgraph(
    prop_graph: PropagationGraph, seeds: torch.Tensor, fanout: tuple[int, ...], generator: torch.Generator
) -> Subgraph:
    """The subgraph of ``seeds`` (global node ids) and a ``len(fanout)``-hop sampled neighbourhood."""
    seen = torch.unique(seeds)
    frontier = seen
    sources, dests, weights = [], [], []
    for width in fanout:
        if len(frontier) == 0:
            break
        source, dest, weight = _sample_hop(prop_graph, frontier, width, generator)
        sources.append(source)
        dests.append(dest)
        weights.append(weight)
        new = torch.unique(source)
        frontier = new[~torch.isin(new, seen)]
        seen = torch.unique(torch.cat([seen, frontier]))
    nodes = seen  # sorted: users (ids < U) come first
    num_users = int((nodes < prop_graph.num_users).sum())
    if sources:
        source, dest, weight = torch.cat(sources), torch.cat(dests), torch.cat(weights)
        index = torch.stack([torch.searchsorted(nodes, dest), torch.searchsorted(nodes, source)])
    else:
        index, weight = torch.zeros(2, 0, dtype=torch.long, device=seeds.device), torch.zeros(0, device=seeds.device)
    adj = torch.sparse_coo_tensor(index, weight, (len(nodes), len(nodes))).coalesce()  # duplicate draws add up
    with warnings.catch_warnings():  # sparse CSR is beta in torch; PyG's LGConv supports it
        warnings.simplefilter("ignore", UserWarning)
        adj = adj.to_sparse_csr()
    return Subgraph(nodes, num_users, adj)
