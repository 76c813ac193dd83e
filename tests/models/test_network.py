"""RecommenderNetwork: construction from config, exclusion of seen items, batch equals per-user results."""

from __future__ import annotations

import pytest
import torch

from kgrec.config import ModelConfig
from kgrec.models import RecommenderNetwork, top_k


def _recommend(model, graph, users, k, exclude=None):
    return top_k(model.score_all(model(graph), graph, users), k, exclude)


@pytest.fixture
def model(small_inputs):
    torch.manual_seed(0)
    kg = torch.randn(small_inputs.num_items + small_inputs.num_entities, 6)
    text = torch.randn(small_inputs.num_items, 10)
    return RecommenderNetwork.from_config(ModelConfig(dim=8, num_layers=2), 5, 7, 2, kg, text)


def test_repr(model):
    assert repr(model) == (
        "RecommenderNetwork(5 users, 7 items, dim=8, LightGCNPropagation(8, num_layers=2), "
        "GatedFusion(8, 10, out_dim=8), kg, EASE(7, l2=100) x 0, DotScorer(8))"
    )


def test_recommend_excludes_and_stays_in_range(model, small_inputs):
    exclude = torch.zeros(5, 7, dtype=torch.bool)
    exclude[:, :3] = True
    top = _recommend(model, small_inputs, torch.arange(5), k=4, exclude=exclude)
    assert top.indices.shape == (5, 4)
    assert (top.indices >= 3).all() and (top.indices < 7).all()
    assert (top.scores[:, :-1] >= top.scores[:, 1:]).all()


def test_batch_equals_single_users(model, small_inputs):
    batch = _recommend(model, small_inputs, torch.arange(5), k=3)
    for user in range(5):
        single = _recommend(model, small_inputs, torch.tensor([user]), k=3)
        assert torch.equal(single.indices[0], batch.indices[user])


def test_linear_blend_adds_ease_scores(model, small_inputs):
    users = torch.arange(5)
    reps = model(small_inputs)
    learned = model.score_all(reps, small_inputs, users)
    model.ease.fit(small_inputs.history)
    model.ease.blend.fill_(2.0)
    blended = model.score_all(reps, small_inputs, users)
    expected = learned + 2.0 * small_inputs.history.to_dense() @ model.ease.weight
    assert torch.allclose(blended, expected, atol=1e-5)
    assert model.ease.weight.diagonal().abs().max() == 0


def test_a_term_at_weight_zero_is_never_computed_and_parts_split_the_score(model, small_inputs, monkeypatch):
    users = torch.arange(5)
    reps = model(small_inputs)
    model.ease.fit(small_inputs.history)
    assert model.active_terms() == [] and [t.name for t in model.terms()] == ["ease"]

    def never(*args, **kwargs):
        raise AssertionError("a term blended out was computed")

    with monkeypatch.context() as patched:
        patched.setattr(model.ease, "term_scores", never)
        learned = model.score_all(reps, small_inputs, users)
        assert set(model.score_shares(small_inputs, users, torch.zeros(5, 1, dtype=torch.long))) == {"graph", "text"}
    model.ease.blend.fill_(0.5)
    rest, part = model.score_parts(reps, small_inputs, users, part="ease")
    assert torch.allclose(rest, learned) and torch.allclose(
        rest + 0.5 * part, model.score_all(reps, small_inputs, users), atol=1e-6
    )
    with pytest.raises(ValueError, match="no 'repeat' score term"):
        model.score_parts(reps, small_inputs, users, part="repeat")


def test_a_run_saved_before_ease_was_a_score_term_loads(model, small_inputs):
    """Runs saved with the old names (``linear.weight``, the network's ``linear_weight``) load into the new ones."""
    model.ease.fit(small_inputs.history)
    model.ease.blend.fill_(0.7)
    state = model.state_dict()
    old = {
        ("linear.weight" if k == "ease.weight" else "linear_weight" if k == "ease.blend" else k): v
        for k, v in state.items()
    }
    fresh = RecommenderNetwork.from_config(ModelConfig(dim=8, num_layers=2), 5, 7, 2, model.kg_emb, model.text_emb)
    fresh.load_state_dict(old)
    assert float(fresh.ease.blend) == pytest.approx(0.7) and torch.equal(fresh.ease.weight, model.ease.weight)
    no_ease = RecommenderNetwork.from_config(
        ModelConfig(dim=8, num_layers=2, linear="none"), 5, 7, 2, model.kg_emb, model.text_emb
    )
    no_ease.load_state_dict(
        {k: v for k, v in old.items() if k != "linear.weight"}
    )  # old networks held a zero weight anyway


def test_ablations_drop_their_views(small_inputs):
    no_text = RecommenderNetwork.from_config(ModelConfig(dim=8), 5, 7, 2, torch.randn(11, 6), None)
    assert no_text.fusion is None and "no text" in repr(no_text)
    no_kg = RecommenderNetwork.from_config(ModelConfig(dim=8), 5, 7, 2, None, torch.randn(7, 10))
    assert no_kg.kg_proj is None and "no kg" in repr(no_kg)
    reps = no_kg(small_inputs)
    assert reps.item.shape == (7, 8)
    assert torch.isfinite(no_kg.fusion_weights(small_inputs)).all()


def test_fresh_model_is_the_backbone(small_inputs, model):
    plain = RecommenderNetwork.from_config(ModelConfig(dim=8, num_layers=2), 5, 7, 2, None, None)
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if k in plain.state_dict()})
    fused, alone = model(small_inputs), plain(small_inputs)
    # KG and text start silent: same user vectors, items scaled by the gate's constant 0.88.
    assert torch.allclose(fused.user, alone.user)
    assert torch.allclose(fused.item, torch.sigmoid(torch.tensor(2.0)) * alone.item, atol=1e-6)


def test_side_and_backbone_parameters_partition_the_model(model):
    side, backbone = model.side_parameters(), model.backbone_parameters()
    assert {id(p) for p in side}.isdisjoint(id(p) for p in backbone)
    assert len(side) + len(backbone) == len(list(model.parameters()))
    assert model.kg_proj.weight in side and model.user_emb.weight in backbone


def test_gradients_reach_every_parameter(model, small_inputs):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):  # the side views open after one step
        optimizer.zero_grad()
        reps = model(small_inputs)
        model.scorer(reps.user[[0, 1]], reps.item[[2, 3]]).pow(2).sum().backward()
        optimizer.step()
    untouched = [name for name, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert untouched == []


def test_auto_propagation_puts_entities_in_the_graph_started_from_pykeen(small_inputs):
    torch.manual_seed(0)
    kg = torch.randn(small_inputs.num_items + small_inputs.num_entities, 8)
    auto = ModelConfig(dim=8, num_layers=2, propagation="auto")
    knowledge = RecommenderNetwork.from_config(auto, 5, 7, 2, kg, None, num_entities=4, num_triples=7)
    assert "KnowledgePropagation(8, num_layers=2, num_relations=2)" in repr(knowledge)
    # The entity table starts from PyKEEN's entity rows (centred, rescaled to the free embeddings' 0.1).
    start = kg[7:] - kg[7:].mean(0)
    assert torch.allclose(knowledge.entity_emb.weight, start / start.std() * 0.1, atol=1e-6)
    # A PyKEEN width other than dim goes through a fixed projection; the table is still (E, dim).
    wide = RecommenderNetwork.from_config(auto, 5, 7, 2, torch.randn(11, 20), None, num_entities=4, num_triples=7)
    assert wide.entity_emb.weight.shape == (4, 8)
    reps = knowledge(small_inputs)
    assert reps.item.shape == (7, 8) and torch.isfinite(reps.item).all()
    # Without triples, or with the KG switched off, auto is the user-item graph alone.
    for config, triples in ((auto, 0), (ModelConfig(dim=8, propagation="auto", use_kg=False), 7)):
        plain = RecommenderNetwork.from_config(
            config, 5, 7, 2, kg if config.use_kg else None, None, num_entities=4, num_triples=triples
        )
        assert "LightGCNPropagation" in repr(plain) and plain.entity_emb is None


def test_score_shares_add_up_and_a_silent_text_view_gets_nothing(model, small_inputs):
    model.eval()
    users, items = torch.tensor([0, 3]), torch.tensor([[1, 4, 6], [0, 2, 5]])
    # A fresh fusion's text projection outputs zero: the text view cannot move any score, whatever the gate says.
    assert torch.equal(model.score_shares(small_inputs, users, items)["text"], torch.zeros(2, 3))
    torch.manual_seed(1)
    for parameter in model.fusion.parameters():
        torch.nn.init.normal_(parameter, std=0.5)
    model.ease.fit(small_inputs.history)
    model.ease.blend.fill_(2.0)
    parts = model.score_shares(small_inputs, users, items)
    assert parts["text"].abs().max() > 1e-4
    reps = model(small_inputs)
    full = model.score_all(reps, small_inputs, users).gather(1, items)
    ease = 2.0 * (small_inputs.history.to_dense() @ model.ease.weight)[users].gather(1, items)
    assert torch.allclose(parts["ease"], ease, atol=1e-5) and "repeat" not in parts  # the model has no repeat term
    # Shapley efficiency: graph + text is the learned score minus that of an item with both views at the catalog mean.
    _, graph_view, _, _ = model._graph_view(small_inputs)
    # (the gate reads the item's degree: compare item by item)
    for row, user_index in enumerate(users.tolist()):
        for column, item in enumerate(items[row].tolist()):
            mean_item = model.fusion(
                graph_view.mean(0, keepdim=True),
                model.text_view().mean(0, keepdim=True),
                small_inputs.item_degree[[item]],
            )
            baseline = model.scorer(reps.user[[user_index]], mean_item)
            learned = full[row, column] - ease[row, column]
            assert torch.allclose(
                parts["graph"][row, column] + parts["text"][row, column], learned - baseline[0], atol=1e-5
            )


def test_propagation_runs_in_float32_under_bfloat16_autocast(model, small_inputs):
    # cuSPARSE has no bfloat16 SpMM for the backward's transposed product (CUDA autocast failed on an H200), so
    # the sparse products must see float32 inputs even where the KG projection ahead of them ran in bfloat16.
    seen = []
    model.propagation.register_forward_pre_hook(
        lambda module, args: seen.extend(a.dtype for a in args[:3] if a is not None)
    )
    with torch.autocast("cpu", dtype=torch.bfloat16):
        reps = model(small_inputs)
        loss = model.scorer(reps.user[[0, 1]], reps.item[[2, 3]]).float().pow(2).sum()
    loss.backward()
    assert seen and set(seen) == {torch.float32}
    assert model.user_emb.weight.grad is not None and torch.isfinite(model.user_emb.weight.grad).all()
