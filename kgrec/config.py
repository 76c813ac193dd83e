"""The run configuration: one typed, frozen, validated object per run, saved next to its results.

Precedence has exactly three levels: the schema defaults below, then a preset or a
``--config`` file (YAML or TOML), then explicit CLI flags (applied with
:meth:`RunConfig.override`). Nothing else is read: no environment variables, no ``sys.argv``.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from kgrec.errors import InputError

__all__ = [
    "InteractionColumns",
    "ItemColumns",
    "TripleColumns",
    "LinkColumns",
    "DataConfig",
    "SplitConfig",
    "GraphConfig",
    "RunConfig",
    "load_config",
    "dump_config",
    "PRESETS",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    list_separator: str = Field("|", min_length=1, description="Separator of multi-valued catalog cells (category, brand).")
    strict_ids: bool = Field(
        True,
        description="True: an id missing from the table that should define it is an error. "
        "False: such rows are dropped and counted.",
    )


class SplitConfig(_Section):
    """How interactions are split into train, validation and test."""

    kind: Literal["random", "loo", "cold-items"] = Field(
        "random",
        description="random: per-user random ratio split; loo: per-user leave-last-out by timestamp; "
        "cold-items: a share of items held out of training entirely.",
    )
    ratios: tuple[float, float, float] = Field((0.8, 0.1, 0.1), description="Train/valid/test shares for 'random'.")
    cold_item_share: float = Field(0.2, gt=0.0, lt=1.0, description="Share of items held out for 'cold-items'.")
    seed: int = Field(2020, ge=0, description="Seed of the split's random generator.")
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
    relations: tuple[str, ...] | None = Field(
        None, description="Keep only these external relations (None keeps all)."
    )
    attribute_columns: tuple[str, ...] = Field(
        (), description="Extra catalog columns whose values become KG entities (e.g. release_year)."
    )


class RunConfig(_Section):
    """Everything one run needs; saved as ``config.yaml`` beside the run's results."""

    data: DataConfig = DataConfig()
    graph: GraphConfig = GraphConfig()

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


PRESETS = ("default", "ml-100k", "ml-1m")


def _validate(tree: dict[str, Any], source: str) -> RunConfig:
    try:
        return RunConfig.model_validate(tree)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise InputError(f"invalid config value for '{key}': {first['msg']}", path=source) from None


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
            tree = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, ValueError, UnicodeDecodeError) as error:
        raise InputError(f"cannot parse config: {' '.join(str(error).split())}", path=path) from None
    if not isinstance(tree, dict):
        raise InputError("a config file must hold a mapping of sections", path=path)
    return _validate(tree, source=str(path))


def dump_config(config: RunConfig) -> str:
    """Return the complete config as YAML text, which :func:`load_config` reads back to an equal object."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
