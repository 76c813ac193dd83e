"""The run configuration: one typed, frozen, validated object per run, saved next to its results.

Over 400 lines because every section and field is declared, bounded and described here, once: the CLI's help,
the documentation and the validation errors all read these declarations.

Precedence has exactly three levels: the schema defaults below, then a preset or a
``--config`` file (YAML or TOML), then explicit CLI flags (applied with
:meth:`RunConfig.override`). Nothing else is read: no environment variables, no ``sys.argv``.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kgrec.errors import InputError

__all__ = [
    "InteractionColumns",
    "ItemColumns",
    "TripleColumns",
    "LinkColumns",
    "DataConfig",
    "SplitConfig",
    "GraphConfig",
    "KGEConfig",
    "TextConfig",
    "ModelConfig",
    "TrainConfig",
    "EvalConfig",
    "ContextConfig",
    "RunConfig",
    "load_config",
    "dump_config",
    "PRESETS",
]


class _Section(BaseModel):
    # No inf or NaN anywhere: train.lr=inf trains to NaN and reports metrics of NaN scores.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, values: Any) -> Any:
        # YAML reads `epochs: true` as a bool and pydantic's lax mode takes it as 1.
        if isinstance(values, dict):
            for name, field in cls.model_fields.items():
                numeric = field.annotation in (int, float, int | None, float | None)
                if numeric and isinstance(values.get(name), bool):
                    raise ValueError(f"{name} must be a number, not {str(values[name]).lower()}")
        return values


class InteractionColumns(_Section):
    """Column names of the interaction log."""

    user: str = Field("user", description="Column holding the user id.")
    item: str = Field("item", description="Column holding the item id.")
    rating: str = Field("rating", description="Optional column with an explicit rating or click value.")
    timestamp: str = Field("timestamp", description="Optional column with unix seconds or an ISO date-time.")


class ItemColumns(_Section):
    """Column names of the item catalog."""

    item: str = Field("item", description="Column holding the item id.")
    title: str = Field("title", description="Optional column with the item's title.")
    description: str = Field("description", description="Optional column with free text about the item.")
    category: str = Field("category", description="Optional column with one or several categories.")
    brand: str = Field("brand", description="Optional column with one or several brands.")


class TripleColumns(_Section):
    """Column names of a tabular triple file."""

    head: str = Field("head", description="Column holding the head entity.")
    relation: str = Field("relation", description="Column holding the relation.")
    tail: str = Field("tail", description="Column holding the tail entity.")


class LinkColumns(_Section):
    """Column names of the item-to-entity link table."""

    item: str = Field("item", description="Column holding the item id.")
    entity: str = Field("entity", description="Column holding the entity id the item stands for in the triples.")


class DataConfig(_Section):
    """How raw files are read and validated."""

    interactions: InteractionColumns = InteractionColumns()
    items: ItemColumns = ItemColumns()
    user: str = Field("user", description="Column holding the user id in the user table.")
    triples: TripleColumns = TripleColumns()
    links: LinkColumns = LinkColumns()
    time_format: str | None = Field(
        None,
        description="strftime format of the log's timestamps (e.g. '%d/%m/%Y %H:%M'); None: unix seconds or ISO 8601, "
        "nothing else (a date such as 11/01/2024 is ambiguous and refused).",
    )
    list_separator: str = Field(
        "|", min_length=1, description="Separator of multi-valued catalog cells (category, brand)."
    )
    repeats: Literal["latest", "sum"] = Field(
        "latest",
        description="Rows repeating an observation (the same user and item, and the same context where the log has "
        "context columns) become one: the latest, or the latest with their ratings summed (counts of uses).",
    )
    strict_ids: bool = Field(
        True,
        description="True: an id missing from the table that should define it is an error. "
        "False: such rows are dropped and counted.",
    )


class SplitConfig(_Section):
    """How interactions are split into train, validation and test."""

    kind: Literal["random", "loo", "cold-items", "given"] = Field(
        "random",
        description="random: per-user random ratio split; loo: per-user leave-last-out by timestamp; "
        "cold-items: a share of items held out of training entirely; given: the dataset's own test set "
        "(its given_split column, e.g. a KGAT/KGIN folder), with validation carved from each user's training part.",
    )
    valid_share: float = Field(
        0.1,
        ge=0.0,
        lt=1.0,
        description="For 'given' without its own validation rows: share of each user's training interactions that validate.",
    )
    ratios: tuple[float, float, float] = Field((0.8, 0.1, 0.1), description="Train/valid/test shares for 'random'.")
    cold_item_share: float = Field(0.2, gt=0.0, lt=1.0, description="Share of items held out for 'cold-items'.")
    seed: int = Field(2020, ge=0, description="Seed of the split's random generator.")
    train_fraction: float = Field(
        1.0,
        gt=0.0,
        le=1.0,
        description="Share of each user's training interactions kept (at least one each; a seeded draw of its own, "
        "so validation and test stay those of the full split): the sparse-data curve. The rest are dropped.",
    )
    min_rating: float | None = Field(
        None, description="Keep only interactions rated at least this as positives; None keeps all."
    )

    @model_validator(mode="after")
    def _ratios_sum_to_one(self) -> SplitConfig:
        if any(r < 0 for r in self.ratios) or abs(sum(self.ratios) - 1.0) > 1e-6 or self.ratios[0] <= 0:
            raise ValueError(f"split.ratios must be non-negative, sum to 1 and keep a train share, got {self.ratios}")
        return self


class GraphConfig(_Section):
    """How the knowledge graph and the user-item-entity graph are built."""

    split: SplitConfig = SplitConfig()
    reverse_edges: bool = Field(True, description="Add a reverse edge type for every edge type of the PyG graph.")
    relations: tuple[str, ...] | None = Field(None, description="Keep only these external relations (None keeps all).")
    attribute_columns: tuple[str, ...] = Field(
        (), description="Extra catalog columns whose values become KG entities (e.g. release_year)."
    )


class KGEConfig(_Section):
    """PyKEEN knowledge-graph embeddings, trained on the KG triples only (never on interactions)."""

    model: str = Field("TransE", description="Any PyKEEN model name (TransE, RotatE, DistMult, ComplEx, ...).")
    dim: int = Field(64, ge=2, le=4096, description="Embedding dimension (complex models store twice as many reals).")
    epochs: int = Field(20, ge=1, description="Training epochs.")
    batch_size: int = Field(4096, ge=1, description="Triples per batch.")
    lr: float = Field(0.01, gt=0, description="Learning rate (Adam).")
    eval_share: float = Field(
        0.05, ge=0.0, lt=0.5, description="Share of triples held out for link-prediction metrics."
    )
    max_eval_triples: int = Field(2000, ge=0, description="Cap on held-out triples ranked, to bound evaluation time.")
    link_prediction: bool = Field(
        False,
        description="Rank the held-out triples (PyKEEN's link-prediction MRR and Hits@K, under 'kge' in metrics.json; "
        "off by default: nobody read the figures and they cost a training minute). They are held out either way, so this leaves the "
        "embeddings unchanged.",
    )
    seed: int = Field(2020, ge=0, description="PyKEEN random seed.")


class TextConfig(_Section):
    """Item text embeddings from a BERT-family encoder (transformers)."""

    model: str | None = Field(
        None, description="Local path or hub name of a transformers encoder; None: the bundled all-MiniLM-L6-v2."
    )
    max_length: int = Field(128, ge=8, le=4096, description="Tokens per item text.")
    batch_size: int = Field(64, ge=1, description="Texts per encoder batch.")
    pooling: Literal["auto", "mean", "cls", "max", "lasttoken"] = Field(
        "auto",
        description="How token states become one vector; auto: as the model was trained (its sentence-transformers "
        "modules.json: CLS for BGE, mean for MiniLM and E5), mean for a plain transformers model.",
    )
    prefix: str | None = Field(
        None,
        description="Text put before every item text (E5 wants 'passage: '); None: the model's own document prompt "
        "(config_sentence_transformers.json) where it declares one, else none.",
    )
    finetune_layers: int = Field(
        0, ge=0, le=48, description="Train the encoder's top N layers with the KG/text stage (0: frozen, cached)."
    )


class ModelConfig(_Section):
    """The recommender: base embeddings, propagation, fusion and scorer, chosen from registries by name."""

    @field_validator("repeat", "kg_neighbours", mode="before")
    @classmethod
    def _on_off(cls, value: Any) -> Any:
        """YAML 1.1 reads an unquoted ``on``/``off`` (a config file, ``--set model.repeat=on``) as a boolean."""
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value

    dim: int = Field(64, ge=2, le=4096, description="Width of user and item representations.")
    propagation: str = Field(
        "lightgcn",
        description="Propagation registry name (kgrec ls propagations): lightgcn (the user-item graph), knowledge "
        "(users, items and KG entities in one graph), knowledge-mean (the same, blind to relations), relational; "
        "or auto: knowledge when the KG is used and has triples, else lightgcn. lightgcn stays the default while "
        "knowledge measures worse on warm items (README).",
    )
    num_layers: int = Field(3, ge=0, le=10, description="Propagation layers; 0 disables propagation.")
    kg_layers: int = Field(1, ge=0, le=5, description="Relational KG layers (relational propagation only).")
    fusion: str = Field("gated", description="Fusion registry name: concat, sum, gated, attention.")
    scorer: str = Field("dot", description="Scorer registry name: dot or mlp.")
    use_kg: bool = Field(True, description="Use the PyKEEN entity embeddings (ablation switch).")
    use_text: bool = Field(True, description="Use the text embeddings (ablation switch).")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout on the text projection.")
    linear: Literal["ease", "none"] = Field(
        "ease", description="A closed-form EASE model blended into the scores (weight chosen on validation)."
    )
    ease_l2: tuple[float, ...] = Field(
        (100.0, 250.0, 500.0, 1000.0), min_length=1, description="EASE ridge penalties tried on validation."
    )
    ease_kg_weight: tuple[Annotated[float, Field(ge=0.0)], ...] = Field(
        (0.0, 1.0, 4.0),
        min_length=1,
        description="Weights of the KG's item links stacked under the interactions in EASE's Gram matrix (items sharing "
        "an entity co-occur, so items without interactions get weights; collective EASE), each tried with every "
        "penalty on validation; 0 is plain EASE. Not used with use_kg false.",
    )
    ease_text_weight: tuple[Annotated[float, Field(ge=0.0)], ...] = Field(
        (0.0, 3.0),
        min_length=1,
        description="Weights of the items' text similarities (centred, unit-length text embeddings) added to EASE's Gram "
        "matrix the same way, each tried with every penalty and KG weight on validation; 0 is none. Not used with "
        "use_text false.",
    )
    kg_neighbours: Literal["off", "on"] = Field(
        "off",
        description="A KG nearest-neighbour score term (kgrec.models.KGNeighbourTerm) for items with at most "
        "kg_neighbours_max_degree training interactions, blended with a weight chosen on validation (0 unless it helps).",
    )
    kg_neighbours_rule: Literal["best", "one-se"] = Field(
        "one-se",
        description="How validation picks the KG nearest-neighbour term's weight. best: the highest validation score "
        "(0 unless the term helps on average). one-se: the largest weight whose users' scores are within one paired "
        "standard error of the best's, leaning towards the KG where validation cannot tell the weights apart.",
    )
    kg_neighbours_max_degree: int = Field(
        20, ge=0, description="Items with at most this many training interactions get the KG nearest-neighbour score."
    )
    repeat: Literal["auto", "on", "off"] = Field(
        "auto",
        description="A repeat-use term (kgrec.models.RepeatUse): the user's own use counts of each item, overall and with "
        "each of the query's context values, and everyone's counts in that context, weighted as learned on the "
        "training observations (each left out of its own counts) and blended in with a weight chosen on validation. "
        "auto: on for eval.task in-context (where the items a user already uses are candidates), off for discovery.",
    )
    blend_rule: Literal["auto", "best", "one-se", "one-se-blend"] = Field(
        "auto",
        description="How validation picks EASE's penalty, KG and text weights and the blend weight. best: the highest "
        "validation score. one-se: the simplest candidate (most weight on EASE, then fewest KG and text rows) whose "
        "users' scores are within one standard error of the best's, paired over users. one-se-blend: the best's EASE "
        "(penalty, KG and text rows) kept, and the blend with the most weight on it within one standard error of the "
        "best, the larger of the SEs paired over users and over held-out items (the metric summed by item). auto: "
        "one-se-blend when eval.candidates is unseen (a cold-items split: validation's few new items are not test's, "
        "and the learned model's scores of new items vary with the seed), best otherwise. What each costs: "
        "benchmarks/results/blend_rule_ml-100k.md.",
    )


class TrainConfig(_Section):
    """The training loop: loss, sampling, optimiser, early stopping, device."""

    schedule: Literal["staged", "joint"] = Field(
        "staged",
        description="staged: train the collaborative backbone, then the KG/text parameters on top of its best "
        "state (kept only if validation improves); joint: everything at once.",
    )
    epochs: int = Field(300, ge=1, description="Maximum epochs (of the backbone stage, when staged).")
    side_epochs: int = Field(100, ge=0, description="Maximum epochs of the KG/text stage (staged schedule).")
    refit_linear: bool = Field(
        False,
        description="Once validation has chosen EASE's penalty, KG weight and blend weight, solve EASE again on the "
        "training plus validation interactions and read each user's validation items as input too (the learned part "
        "is not retrained). The saved model then uses all the data it was given, as a deployed one should; validation "
        "metrics are measured before the refit, test after it.",
    )
    item_dropout: float = Field(
        0.5,
        ge=0.0,
        lt=1.0,
        description="KG/text stage: share of items whose free embedding is hidden each step, so KG and text "
        "learn to carry items without interactions (DropoutNet).",
    )
    batch_size: int = Field(4096, ge=1, description="Positive interactions per step.")
    batching: Literal["full", "sampled", "auto"] = Field(
        "full",
        description="full: every step propagates over the whole training graph; sampled: over the batch's "
        "sampled L-hop neighbourhood (memory bounded by batch and fan-out); auto: sampled above sampled_above edges.",
    )
    fanout: tuple[Annotated[int, Field(ge=1, le=10_000)], ...] = Field(
        (10, 10, 10), min_length=1, description="Neighbours sampled per node at each hop (sampled batching)."
    )
    sampled_above: int = Field(
        5_000_000, ge=0, description="batching=auto samples when the graph has more training interactions."
    )
    lr: float = Field(0.005, gt=0, description="AdamW learning rate.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW decoupled weight decay.")
    reg: float = Field(1e-4, ge=0, description="L2 penalty on the batch's base embeddings (as LightGCN).")
    loss: Literal["bpr", "bce", "softmax"] = Field(
        "bpr", description="Pairwise BPR, pointwise binary cross-entropy, or sampled softmax over the negatives."
    )
    negatives: int = Field(1, ge=1, le=100, description="Uniform negatives per positive.")
    tasks: tuple[Literal["rank", "rating", "kg"], ...] = Field(
        ("rank",),
        min_length=1,
        description="Objectives trained together on shared representations: rank (the ranking loss), rating "
        "(regression of the rating value) and kg (PyKEEN's loss on the KG triples, fine-tuning the entity "
        "embeddings instead of freezing them).",
    )
    task_weighting: Literal["fixed", "uncertainty"] = Field(
        "fixed",
        description="fixed: the loss is the sum of task_weights x task loss; uncertainty: each task's weight is "
        "learned as exp(-s) with a + s penalty (Kendall et al., 2018), task_weights being the starting weights.",
    )
    task_weights: dict[Literal["rank", "rating", "kg"], float] = Field(
        default_factory=dict, description="Weight per task (missing tasks weigh 1)."
    )
    kg_batch_size: int = Field(1024, ge=1, description="KG triples per step of the kg task.")
    eval_every: int = Field(
        1, ge=1, description="Epochs between validation evaluations (1, as RecBole: full ranking is cheap)."
    )
    patience: int = Field(10, ge=1, description="Validation evaluations without improvement before stopping.")
    device: str = Field(
        "auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$", description="auto (CUDA when torch sees one), cpu, cuda or cuda:N."
    )
    checkpoint_every: int = Field(
        1,
        ge=0,
        description="Epochs between resumable checkpoints in the run directory (0: none; kgrec train --resume).",
    )
    mixed_precision: bool = Field(True, description="bfloat16 autocast on CUDA (ignored on CPU).")
    seed: int = Field(2020, ge=0, description="Seed of model init and negative sampling.")

    @model_validator(mode="after")
    def _tasks_distinct(self) -> TrainConfig:
        if len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"train.tasks names a task twice: {list(self.tasks)}")
        if any(not (w > 0) for w in self.task_weights.values()):
            raise ValueError("train.task_weights must be positive")
        return self

    def samples(self, num_interactions: int) -> bool:
        """Whether training on ``num_interactions`` training pairs uses sampled mini-batches."""
        return self.batching == "sampled" or (self.batching == "auto" and num_interactions > self.sampled_above)


class EvalConfig(_Section):
    """Full-ranking evaluation."""

    ks: tuple[Annotated[int, Field(ge=1, le=100_000)], ...] = Field(
        (10, 20), min_length=1, description="Cut-offs K of the @K metrics."
    )
    select_metric: str = Field("ndcg@10", description="Validation metric for early stopping and model selection.")
    batch_size: int = Field(512, ge=1, description="Users scored per batch.")
    candidates: Literal["all", "unseen"] = Field(
        "all",
        description="Items ranked in validation for model selection: all, or only those without training "
        "interactions (for a cold-start task, so selection measures what the task asks).",
    )
    task: Literal["discovery", "in-context"] = Field(
        "discovery",
        description="discovery: rank the items a user has not interacted with yet (training items masked). in-context: "
        "for each (user, context) of the held-out log, rank every item, those the user used in other contexts "
        "included; the targets are the items used in that context (a log with context columns).",
    )


TimeFeature = Literal["hour", "weekday", "gap", "period"]


class ContextConfig(_Section):
    """Context features that condition the user representation at scoring time (all empty: no context).

    Each feature is a field of categorical values; numbers are cut into quantile bins learned on
    training data; values never seen in training read as the field's "unknown" value.
    """

    time: tuple[TimeFeature, ...] = Field(
        (),
        description="From the timestamp (UTC): hour of day, weekday, gap (log2 bucket of the time since the "
        "user's previous interaction) and period (calendar month).",
    )
    user: tuple[str, ...] = Field((), description="User-table columns (e.g. age, gender, occupation, zip_code).")
    columns: tuple[str, ...] = Field((), description="Extra interaction-log columns declared as context (e.g. device).")
    prefix: dict[str, int] = Field(
        default_factory=dict,
        description="Keep only the first N characters of these fields (zip_code: 2 is a coarse region).",
    )
    bins: int = Field(5, ge=2, le=100, description="Quantile bins for numeric fields (e.g. age).")
    min_count: int = Field(5, ge=1, description="Values seen fewer times in training read as unknown.")
    dropout: float = Field(
        0.2,
        ge=0.0,
        lt=1.0,
        description="Share of context fields hidden per training example, so partial context at "
        "recommendation time (a field not given) is a situation the model has seen.",
    )

    @property
    def enabled(self) -> bool:
        """Whether any context feature is used."""
        return bool(self.time or self.user or self.columns)

    @model_validator(mode="after")
    def _distinct_fields(self) -> ContextConfig:
        fields = [*self.time, *self.user, *self.columns]
        repeated = sorted({f for f in fields if fields.count(f) > 1})
        if repeated:
            raise ValueError(f"context field '{repeated[0]}' is named twice")
        if any(n < 1 for n in self.prefix.values()):
            raise ValueError("context.prefix lengths must be at least 1")
        return self


class RunConfig(_Section):
    """Everything one run needs; saved as ``config.yaml`` beside the run's results."""

    data: DataConfig = DataConfig()
    graph: GraphConfig = GraphConfig()
    kge: KGEConfig = KGEConfig()
    text: TextConfig = TextConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    context: ContextConfig = ContextConfig()

    def override(self, overrides: dict[str, Any]) -> RunConfig:
        """Return a new config with dotted keys replaced (``{"graph.split.seed": 7}``), validated again.

        Raises:
            InputError: for an unknown key or an invalid value.
        """
        tree = self.model_dump(mode="python")
        for dotted, value in overrides.items():
            node = tree
            *parents, leaf = dotted.split(".")
            for part in parents:
                if not isinstance(node.get(part), dict):
                    raise InputError(f"unknown config key '{dotted}'")
                node = node[part]
            if leaf not in node:
                raise InputError(f"unknown config key '{dotted}'")
            node[leaf] = value
        return _validate(tree, source="overrides")


PRESETS = ("default", "ml-100k", "ml-1m", "alibaba-fashion", "frappe")


def _validate(tree: dict[str, Any], source: str) -> RunConfig:
    try:
        return RunConfig.model_validate(tree)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise InputError(f"invalid config value for '{key}': {first['msg']}", path=source) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping (yaml keeps the last silently, as TOML
    does not: a run lost its `use_text: false` to a later `use_text` of the same section)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"the key '{key}' is given twice in one section",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_config(preset_or_path: str | Path = "default") -> RunConfig:
    """Load a packaged preset by name (``"ml-100k"``) or a YAML/TOML file by path, and validate it."""
    path = Path(preset_or_path)
    if str(preset_or_path) in PRESETS:
        text = resources.files("kgrec.configs").joinpath(f"{preset_or_path}.yaml").read_text(encoding="utf-8")
        return _validate(yaml.safe_load(text) or {}, source=f"preset {preset_or_path}")
    if not path.is_file():
        raise InputError(f"no such config file or preset (presets: {', '.join(PRESETS)})", path=path)
    try:
        if path.suffix == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # pragma: no cover - Python 3.10
                import tomli as tomllib
            tree = tomllib.loads(path.read_text(encoding="utf-8"))
        else:
            tree = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader) or {}
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        raise InputError(
            f"cannot parse config: {error.problem}", path, None if mark is None else mark.line + 1
        ) from None
    except (yaml.YAMLError, ValueError, UnicodeDecodeError) as error:
        raise InputError(f"cannot parse config: {' '.join(str(error).split())}", path=path) from None
    if not isinstance(tree, dict):
        raise InputError("a config file must hold a mapping of sections", path=path)
    return _validate(tree, source=str(path))


def dump_config(config: RunConfig) -> str:
    """Return the complete config as YAML text, which :func:`load_config` reads back to an equal object."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
