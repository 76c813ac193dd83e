r"""Score terms: scores added to the learned one, each with a blend weight chosen on validation.

.. math::
    s(u, i) = \mathrm{Score}(\mathbf{u}, \mathbf{i}) + \sum_t w_t\, \mathrm{term}_t(u, i)

A term is a :class:`ScoreTerm`: it scores every item for a batch of users (:meth:`ScoreTerm.term_scores`), keeps
its weight :math:`w_t` in the buffer :attr:`ScoreTerm.blend` (0 while the learned model trains, so a term at
weight 0 is dropped from every score, share and explanation), and says what it is (:attr:`ScoreTerm.name`, the key
of its share; :attr:`ScoreTerm.switch_off`, the setting that trains without it). An explanation path through a
history item gets the term's :meth:`ScoreTerm.history_contributions`. EASE (:class:`~kgrec.models.ease.EASE`) and
repeat use (:class:`~kgrec.models.repeat.RepeatUse`) are the two terms kgrec has;
:meth:`~kgrec.models.RecommenderNetwork.terms` lists them and every score adds the active ones, so a third term is
one class and one entry in that list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

if TYPE_CHECKING:
    from kgrec.models.graph_inputs import PropagationGraph

__all__ = ["ScoreTerm"]


class ScoreTerm(nn.Module):
    """A score over every item for a batch of users, added to the learned score with weight :attr:`blend`.

    Subclasses set :attr:`name`, :attr:`title` and :attr:`switch_off` and implement :meth:`term_scores`; one that
    can score a user who is not in the graph from an item history implements :meth:`history_scores`.
    """

    #: The term's key in score shares and blend records (``"ease"``, ``"repeat"``).
    name: ClassVar[str]
    #: What a message calls it ("EASE", "repeat-use").
    title: ClassVar[str]
    #: The setting that trains a run without it (``model.linear=none``).
    switch_off: ClassVar[str]

    blend: torch.Tensor  # a buffer, declared for type checkers

    def __init__(self) -> None:
        super().__init__()
        # The weight beside the learned score, chosen on validation after training (0 until then).
        self.register_buffer("blend", torch.zeros(()))

    @property
    def active(self) -> bool:
        """Whether the term is blended in (a term at weight 0 is never computed)."""
        return float(self.blend) != 0.0

    def term_scores(
        self, prop_graph: PropagationGraph, users: torch.Tensor, context: torch.Tensor | None
    ) -> torch.Tensor:
        """``(B, I)`` unweighted scores of every item for ``users (B,)`` in ``context (B, F)`` (or None)."""
        raise NotImplementedError

    def history_scores(self, history: torch.Tensor) -> torch.Tensor | None:
        """``(B, I)`` unweighted scores for users known only by their ``(B, I)`` 0/1 item histories, or None when the
        term cannot score them (it then stays out of a new user's scores)."""
        return None

    def history_contributions(self, history: torch.Tensor, item: int) -> torch.Tensor | None:
        """``(H,)`` unweighted part of the term's score of ``item`` that each item of a user's ``history (H,)`` brings,
        when the term's score is such a sum (explanation paths give it to the path through that history item); None
        when it is not, and the term then counts for the item itself."""
        return None

    def weighted(self, prop_graph: PropagationGraph, users: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        """``(B, I)`` the term as it enters the score: :attr:`blend` times :meth:`term_scores`."""
        return self.blend * self.term_scores(prop_graph, users, context)
