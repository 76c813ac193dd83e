"""Real PyKEEN on the tiny KG: shapes, row order = kgrec's KG node index, caching."""

from __future__ import annotations

import pytest
import torch

from kgrec.config import KGEConfig
from kgrec.embed import cache as cache_module
from kgrec.embed import train_kg_embeddings
from kgrec.errors import InputError


def test_shape_and_row_order(tiny_graph):
    config = KGEConfig(model="TransE", dim=16, epochs=40, batch_size=64, lr=0.1, eval_share=0.0)
    result = train_kg_embeddings(tiny_graph, config)
    assert result.entity_emb.shape == (tiny_graph.num_kg_nodes, 16)
    assert result.relation_emb.shape == (len(tiny_graph.relations), 16)
    # If rows were in PyKEEN's own order rather than kgrec's node order, true triples would not fit TransE.
    heads, relations, tails = (torch.from_numpy(tiny_graph.triples[:, i]) for i in range(3))
    emb, rel = result.entity_emb, result.relation_emb
    true_distance = (emb[heads] + rel[relations] - emb[tails]).norm(dim=1).mean()
    shuffled = tails[torch.randperm(len(tails), generator=torch.Generator().manual_seed(0))]
    random_tails = torch.randint(0, tiny_graph.num_kg_nodes, (len(tails),), generator=torch.Generator().manual_seed(1))
    assert true_distance < (emb[heads] + rel[relations] - emb[random_tails]).norm(dim=1).mean()
    assert true_distance < (emb[heads] + rel[relations] - emb[shuffled]).norm(dim=1).mean() + 1e-6


def test_cache_hit_and_corruption(tmp_path, tiny_graph):
    config = KGEConfig(dim=8, epochs=2, eval_share=0.3, max_eval_triples=10, link_prediction=True)
    first = train_kg_embeddings(tiny_graph, config, cache_dir=tmp_path)
    assert not first.cached and set(first.metrics) >= {"mrr", "hits@10"}
    second = train_kg_embeddings(tiny_graph, config, cache_dir=tmp_path)
    assert second.cached and torch.equal(first.entity_emb, second.entity_emb)
    for path in (tmp_path / "kge").iterdir():
        path.write_bytes(b"truncated")
    third = train_kg_embeddings(tiny_graph, config, cache_dir=tmp_path)
    assert not third.cached  # a damaged cache entry is rebuilt, never reused
    other = train_kg_embeddings(tiny_graph, config.model_copy(update={"seed": 5}), cache_dir=tmp_path)
    assert not other.cached


@pytest.mark.parametrize("model", ["RotatE", "DistMult", "ComplEx"])
def test_other_pykeen_models(tiny_graph, model):
    result = train_kg_embeddings(tiny_graph, KGEConfig(model=model, dim=4, epochs=1, eval_share=0.0))
    expected = 8 if model in ("RotatE", "ComplEx") else 4  # complex entities become real pairs
    assert result.entity_emb.shape == (tiny_graph.num_kg_nodes, expected)


def test_unknown_model_is_an_input_error(tiny_graph):
    with pytest.raises(InputError, match="kge.model='NoSuchModel'"):
        train_kg_embeddings(tiny_graph, KGEConfig(model="NoSuchModel", epochs=1))


def test_cache_key_depends_on_versions(monkeypatch):
    first = cache_module.cache_key(b"x", {"a": 1}, ("pykeen",))
    monkeypatch.setattr(cache_module, "_versions", lambda packages: {"torch": "0.0"})
    assert cache_module.cache_key(b"x", {"a": 1}, ("pykeen",)) != first


def test_link_prediction_is_opt_in_and_leaves_the_embeddings_alone(tiny_graph):
    """Ranking the held-out triples took a minute of every ml-100k training that nobody read; it is now asked for."""
    config = KGEConfig(dim=8, epochs=3, eval_share=0.3)
    quiet = train_kg_embeddings(tiny_graph, config)
    measured = train_kg_embeddings(tiny_graph, config.model_copy(update={"link_prediction": True}))
    assert quiet.metrics == {} and {"mrr", "hits@1", "hits@10"} <= set(measured.metrics)
    assert torch.equal(quiet.entity_emb, measured.entity_emb)  # the same triples held out either way
    assert torch.equal(quiet.testing, measured.testing)
