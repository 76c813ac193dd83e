"""One place where a :class:`~kgrec.models.RecommenderNetwork` is put together, for training and for loading.

Training knows the parts (PyKEEN rows, text rows, a text tuner, the fitted context vocabulary);
loading knows only their shapes, from the checkpoint, and gets zero-filled parts that the saved
``state_dict`` then overwrites. Both go through :func:`assemble_model`, so a run loads into
exactly the module it was trained as.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from kgrec.config import RunConfig
from kgrec.data import ContextFeatures
from kgrec.errors import InputError
from kgrec.graph import KnowledgeGraph
from kgrec.models import ContextEncoder, KGNeighbourTerm, RatingHead, RecommenderNetwork, RepeatUse

__all__ = ["ModelShapes", "assemble_model", "repeat_enabled", "resolve_device"]


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` picks CUDA when available; ``cuda`` without a GPU is an error, not a silent fallback."""
    name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(
            f"device {name} was asked for but torch sees no CUDA device (torch.cuda.is_available() is False)"
        )
    try:
        return torch.device(name)
    except RuntimeError:
        raise InputError(f"unknown device '{name}' (auto, cpu, cuda or cuda:N)") from None


def repeat_enabled(config: RunConfig) -> bool:
    """Whether the run gets a repeat-use term: ``model.repeat`` on, or auto and the in-context task."""
    return config.model.repeat == "on" or (config.model.repeat == "auto" and config.eval.task == "in-context")


@dataclass(frozen=True)
class ModelShapes:
    """The sizes a saved model needs to be rebuilt before its weights are loaded (saved in ``model.pt``).

    Attributes:
        num_users, num_items, num_relations: Table sizes.
        kg_shape: ``(N, d)`` of the fixed PyKEEN rows, or None without the KG view.
        text_shape: ``(I, d)`` of the fixed text rows, or None without the text view.
        text_tokens: ``(I, T)`` of a fine-tuned text encoder's token ids, or None.
        context: ``(tokens, fields)`` of the context encoder, or None.
        rating: Whether there is a rating head.
        kg_model: Whether a PyKEEN model is fine-tuned inside the recommender.
        ease_l2: The EASE penalty chosen on validation, or None without EASE.
        ease_kg_weight: The weight of the KG's item links in EASE chosen on validation, or None.
        ease_text_weight: The weight of the items' text rows in EASE chosen on validation, or None.
        repeat_fields: Context fields of the repeat-use term (0: user and item terms only), or None without one.
        kg_neighbours: The KG nearest-neighbour term's ``max_degree``, or None without one.
    """

    num_users: int
    num_items: int
    num_relations: int
    kg_shape: tuple[int, ...] | None = None
    text_shape: tuple[int, ...] | None = None
    text_tokens: tuple[int, ...] | None = None
    context: tuple[int, int] | None = None
    rating: bool = False
    kg_model: bool = False
    ease_l2: float | None = None
    ease_kg_weight: float | None = None
    ease_text_weight: float | None = None
    repeat_fields: int | None = None
    kg_neighbours: int | None = None

    @classmethod
    def of(cls, model: RecommenderNetwork, num_relations: int) -> ModelShapes:
        """The shapes of a built model."""
        return cls(
            num_users=model.num_users,
            num_items=model.num_items,
            num_relations=num_relations,
            kg_shape=None if model.kg_emb is None else tuple(model.kg_emb.shape),
            text_shape=None if model.text_emb is None else tuple(model.text_emb.shape),
            text_tokens=None if model.text_encoder is None else tuple(model.text_encoder.input_ids.shape),  # type: ignore[arg-type]
            context=None if model.context is None else (model.context.num_tokens, model.context.num_fields),
            rating=model.rating is not None,
            kg_model=model.kg_model is not None,
            ease_l2=None if model.ease is None else model.ease.l2,
            ease_kg_weight=None if model.ease is None else model.ease.kg_weight,
            ease_text_weight=None if model.ease is None else model.ease.text_weight,
            repeat_fields=None if model.repeat is None else model.repeat.num_fields,
            kg_neighbours=None if model.kg_neighbours is None else model.kg_neighbours.max_degree,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and numbers, as stored in ``model.pt`` (read back with ``weights_only=True``)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelShapes:
        """From :meth:`to_dict` (keys a newer kgrec added are ignored; missing ones take their defaults)."""
        known = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in cls.__dataclass_fields__}
        return cls(**known)  # type: ignore[arg-type]  # values as to_dict wrote them


def assemble_model(
    config: RunConfig,
    graph: KnowledgeGraph,
    shapes: ModelShapes,
    *,
    kg_emb: torch.Tensor | None = None,
    text_emb: torch.Tensor | None = None,
    text_encoder: torch.nn.Module | None = None,
    context: ContextFeatures | None = None,
    rating_mean: float = 0.0,
    kg_training: torch.Tensor | None = None,
    kg_state: dict[str, torch.Tensor] | None = None,
) -> RecommenderNetwork:
    """The recommender of ``config`` on ``graph`` with the given shapes; parts not given are zero-filled.

    Args:
        config: The run config (its ``model``, ``text`` and ``kge`` sections are read).
        graph: The graph the model scores (entities, triples).
        shapes: What to build; see :class:`ModelShapes`.
        kg_emb: Fixed PyKEEN rows (training); zeros of ``shapes`` when absent (loading).
        text_emb: Fixed text rows (training); zeros of ``shapes`` when absent (loading).
        text_encoder: A :class:`~kgrec.embed.text.TextTuner` (training); loading builds one with
            zero token ids from the configured text model.
        context: The fitted context vocabulary, needed when ``shapes.context`` is set.
        rating_mean: The rating head's starting global mean.
        kg_training: Training triples of a fine-tuned PyKEEN model.
        kg_state: The starting state of a fine-tuned PyKEEN model.

    Raises:
        InputError: when the context vocabulary does not match the shapes.
    """
    if shapes.kg_shape is not None and kg_emb is None:
        kg_emb = torch.zeros(shapes.kg_shape)
    if shapes.text_shape is not None and text_emb is None:
        text_emb = torch.zeros(shapes.text_shape)
    if shapes.text_tokens is not None and text_encoder is None:
        from kgrec.embed.text import TextTuner, load_encoder, text_recipe

        _, encoder = load_encoder(config.text)
        tokens = torch.zeros(shapes.text_tokens, dtype=torch.long)
        text_encoder = TextTuner(
            encoder, tokens, tokens.clone(), config.text.finetune_layers, text_recipe(config.text).pooling
        )
    context_encoder = None
    if shapes.context is not None:
        if context is None or (context.num_tokens, context.num_fields) != tuple(shapes.context):
            raise InputError("the context vocabulary does not match the model (context.json and model.pt disagree)")
        context_encoder = ContextEncoder(
            context.num_tokens, context.num_fields, config.model.dim, torch.from_numpy(context.offsets)
        )
    rating = RatingHead(shapes.num_users, shapes.num_items, mean=rating_mean) if shapes.rating else None
    kg_model = None
    if shapes.kg_model:
        from kgrec.embed import make_kg_model

        triples = kg_training if kg_training is not None else torch.from_numpy(graph.triples)
        kg_model = make_kg_model(graph, config.kge, triples, kg_state)
    model = RecommenderNetwork.from_config(
        config.model,
        shapes.num_users,
        shapes.num_items,
        shapes.num_relations,
        kg_emb,
        text_emb,
        text_encoder,
        context_encoder,
        rating,
        kg_model,
        num_entities=len(graph.entities),
        num_triples=len(graph.triples),
        repeat=None if shapes.repeat_fields is None else RepeatUse(shapes.repeat_fields),
        kg_neighbours=None if shapes.kg_neighbours is None else KGNeighbourTerm(shapes.kg_neighbours),
    )
    if model.ease is not None and shapes.ease_l2 is not None:
        model.ease.l2 = shapes.ease_l2
    if model.ease is not None and shapes.ease_kg_weight is not None:
        model.ease.kg_weight = shapes.ease_kg_weight
    if model.ease is not None and shapes.ease_text_weight is not None:
        model.ease.text_weight = shapes.ease_text_weight
    return model
