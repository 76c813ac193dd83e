"""EASE against its definition on a small matrix."""

from __future__ import annotations

import torch

from kgrec.models.ease import EASE, text_features


def test_ease_solves_the_constrained_ridge_problem():
    generator = torch.Generator().manual_seed(0)
    matrix = (torch.rand(40, 9, generator=generator) < 0.3).double()
    matrix[:, 8] = 0  # an item nobody interacted with
    ease = EASE(9, l2=5.0).fit(matrix.to_sparse())
    weight = ease.weight.double()
    assert weight.diagonal().abs().max() == 0
    assert weight[:, 8].abs().max() == 0  # a cold item gets no score from EASE
    assert ease.weight.is_contiguous()  # row-major: scoring reads rows of B (column-major was 35x slower at 30k items)
    # Stationarity of the Lagrangian: (X^T X + l2 I) B - X^T X is diagonal.
    gram = matrix.T @ matrix
    residual = (gram + 5.0 * torch.eye(9, dtype=torch.double)) @ weight - gram
    off_diagonal = residual - torch.diag(residual.diagonal())
    assert off_diagonal.abs().max() < 1e-4
    assert repr(ease) == "EASE(9, l2=5) x 0"  # blended out until a weight is chosen


def test_large_catalog_path_matches_the_exact_inverse():
    """Above DOUBLE_PRECISION_ITEMS the fit is a float32 Cholesky solve from a sparse Gram matrix; same B."""
    torch.manual_seed(0)
    interactions = (torch.rand(400, 120) < 0.1).float()
    exact = EASE(120, 50.0).fit(interactions.to_sparse()).weight.clone()
    large = EASE(120, 50.0)
    large.DOUBLE_PRECISION_ITEMS = 10  # take the large-catalog path on a small problem
    assert torch.allclose(large.fit(interactions.to_sparse()).weight, exact, atol=1e-5)
    assert large.weight.is_contiguous()
    assert torch.allclose(EASE(120, 50.0).fit(interactions).weight, exact)  # dense input, same result


def test_sparse_and_dense_history_rows_score_alike():
    """The scores are a sparse product (fast at 30k items); a dense history gives the same numbers."""
    torch.manual_seed(0)
    interactions = (torch.rand(50, 30) < 0.2).float()
    ease = EASE(30, 10.0).fit(interactions.to_sparse())
    dense = interactions[:7] @ ease.weight
    assert torch.allclose(ease(interactions[:7].to_sparse()), dense, atol=1e-6)
    assert torch.allclose(ease(interactions[:7]), dense, atol=1e-6)
    assert ease.weight.dtype == torch.float32 and ease.weight.shape == (30, 30)


def test_kg_rows_join_the_gram_matrix_and_give_a_cold_item_weights():
    """kg_weight a stacks the side rows T under X: B solves the ridge problem of [X; a T]; 0 is plain EASE."""
    generator = torch.Generator().manual_seed(1)
    matrix = (torch.rand(40, 6, generator=generator) < 0.4).double()
    matrix[:, 5] = 0  # nobody interacted with item 5 ...
    side = torch.tensor(
        [[1, 0, 0, 0, 0, 1], [0, 1, 1, 0, 0, 0]], dtype=torch.double
    )  # ... but it shares entity 0 with item 0
    plain = EASE(6, l2=3.0).fit(matrix.to_sparse())
    assert torch.equal(EASE(6, l2=3.0, kg_weight=0.0).fit(matrix.to_sparse(), side.to_sparse()).weight, plain.weight)
    ease = EASE(6, l2=3.0, kg_weight=2.0).fit(matrix.to_sparse(), side.to_sparse_csr())
    stacked = torch.cat([matrix, 2.0 * side])
    assert torch.allclose(ease.weight, EASE(6, l2=3.0).fit(stacked.to_sparse()).weight, atol=1e-6)
    assert plain.weight[:, 5].abs().max() == 0 and ease.weight[0, 5] > 0  # taking item 0 now recommends item 5
    assert repr(ease) == "EASE(6, l2=3, kg_weight=2) x 0"


def test_text_rows_add_centred_text_similarities_and_place_a_cold_item():
    """text_weight b adds b^2 F F^T to the Gram matrix, F the centred unit-length text rows: as if F^T were rows of X."""
    generator = torch.Generator().manual_seed(2)
    matrix = (torch.rand(40, 6, generator=generator) < 0.4).double()
    matrix[:, 5] = 0  # nobody interacted with item 5 ...
    text = torch.randn(6, 4, generator=generator) + 10.0  # a large shared direction, as sentence encoders give
    text[5] = text[0] + 0.01 * torch.randn(4, generator=generator)  # ... but its text is item 0's
    features = text_features(text)
    assert torch.allclose(features.norm(dim=1), torch.ones(6, dtype=features.dtype), atol=1e-5)
    assert torch.allclose(text_features(text + 5.0), features, atol=1e-5)  # a common offset is removed
    ease = EASE(6, l2=3.0, text_weight=2.0).fit(matrix.to_sparse(), text=features)
    stacked = torch.cat([matrix, 2.0 * features.double().T])
    assert torch.allclose(ease.weight, EASE(6, l2=3.0).fit(stacked).weight, atol=1e-5)
    assert ease.weight[0, 5] > 0 and ease.weight[0, 5] == ease.weight[:, 5].max()  # item 0's takers get item 5
    assert torch.equal(
        EASE(6, l2=3.0).fit(matrix.to_sparse(), text=features).weight, EASE(6, l2=3.0).fit(matrix.to_sparse()).weight
    )
    assert repr(ease) == "EASE(6, l2=3, text_weight=2) x 0"


def test_extend_gives_new_items_the_ridge_columns_of_their_side_rows_and_keeps_the_rest():
    """A new item's column is the regression of its side rows on the trained items: (G + l2 I)^-1 g, solved by CG."""
    generator = torch.Generator().manual_seed(3)
    matrix = (torch.rand(50, 8, generator=generator) < 0.3).double()
    side = (torch.rand(5, 8, generator=generator) < 0.4).double()
    text = text_features(torch.randn(8, 4, generator=generator) + 3.0)
    trained = EASE(6, l2=4.0, kg_weight=1.5, text_weight=2.0).fit(
        matrix[:, :6].to_sparse(), side[:, :6].to_sparse(), text[:6]
    )
    before = trained.weight.clone()
    grown = EASE(8, l2=4.0, kg_weight=1.5, text_weight=2.0)
    grown.weight = torch.zeros(8, 8)
    grown.weight[:6, :6] = before
    history = matrix.clone()
    history[:, 6:] = 0  # the new items have no interactions
    grown.extend(2, history.to_sparse_csr(), side.to_sparse_csr(), text)
    stacked = torch.cat([history[:, :6], 1.5 * side[:, :6], 2.0 * text[:6].double().T])
    new_rows = torch.cat([history[:, 6:], 1.5 * side[:, 6:], 2.0 * text[6:].double().T])
    expected = torch.linalg.solve(stacked.T @ stacked + 4.0 * torch.eye(6, dtype=torch.double), stacked.T @ new_rows)
    torch.testing.assert_close(grown.weight[:6, 6:].double(), expected, atol=1e-5, rtol=1e-4)
    assert torch.equal(grown.weight[:6, :6], before) and grown.weight[6:].abs().max() == 0  # old columns, new rows
    plain = EASE(8, l2=4.0)
    plain.weight = torch.zeros(8, 8)
    assert plain.extend(2, history.to_sparse_csr(), side.to_sparse_csr(), text).weight.abs().max() == 0  # no side rows


def test_item_links_mark_the_items_each_kg_node_links(small_inputs):
    links = small_inputs.item_links().to_dense()
    num_items = small_inputs.num_items
    assert links.shape == (num_items + small_inputs.num_entities, num_items)
    assert set(links.unique().tolist()) <= {0.0, 1.0}
    # The fixture links item i to entity i % 4, one relation each: entity rows hold those items, item rows nothing.
    for item in range(num_items):
        assert links[:, item].nonzero().ravel().tolist() == [num_items + item % 4]
