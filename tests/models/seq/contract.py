"""Contract every :class:`~leanrec.models.seq.SequenceEncoder` must pass.

A new encoder (e.g. one found by architecture search) subclasses :class:`SequenceEncoderContract`
and implements ``make_encoder``:

    class TestMyEncoder(SequenceEncoderContract):
        def make_encoder(self, embedding_dim):
            return MyEncoder(embedding_dim)
"""

from __future__ import annotations

import pytest
import torch

from leanrec.models.seq import NextItemModel, SequenceEncoder


class SequenceEncoderContract:
    n_items = 40
    embedding_dim = 16
    length = 10

    def make_encoder(self, embedding_dim: int) -> SequenceEncoder:
        raise NotImplementedError

    @pytest.fixture
    def model(self) -> NextItemModel:
        torch.manual_seed(0)
        return NextItemModel(self.n_items, self.make_encoder(self.embedding_dim)).eval()

    @staticmethod
    def _batch() -> torch.Tensor:
        """Right-aligned rows of lengths 10, 6, 1, 3 (IDs in 1..40)."""
        gen = torch.Generator().manual_seed(1)
        ids = torch.randint(1, 41, (4, 10), generator=gen)
        for row, length in enumerate((10, 6, 1, 3)):
            ids[row, : 10 - length] = 0
        return ids

    def test_output_shape(self, model: NextItemModel) -> None:
        ids = self._batch()
        hidden = model(ids)
        assert hidden.shape == (4, self.length, self.embedding_dim)
        assert hidden.dtype == torch.float32
        assert torch.isfinite(hidden).all()

    def test_causal_later_items_do_not_change_earlier_outputs(self, model: NextItemModel) -> None:
        ids = self._batch()
        changed = ids.clone()
        changed[:, 7] = torch.tensor([5, 9, 13, 17])  # every row is real at column 7
        before, after = model(ids), model(changed)
        torch.testing.assert_close(before[:, :7], after[:, :7])
        assert not torch.allclose(before[:, 7], after[:, 7])

    def test_padding_invariance(self, model: NextItemModel) -> None:
        ids = self._batch()
        hidden = model(ids)
        real = ids != 0
        # the same rows with 4 columns of padding cut off: rows 1..3 lose only padding
        short = model(ids[1:, 4:])
        torch.testing.assert_close(short[real[1:, 4:]], hidden[1:][real[1:]], atol=1e-5, rtol=1e-5)
        # and with 5 extra padding columns in front
        limit = model.encoder.max_length
        if limit is None or limit >= self.length + 5:
            longer = model(torch.cat([torch.zeros(4, 5, dtype=torch.int64), ids], dim=1))
            torch.testing.assert_close(longer[:, 5:][real], hidden[real], atol=1e-5, rtol=1e-5)

    def test_rows_are_independent(self, model: NextItemModel) -> None:
        ids = self._batch()
        torch.testing.assert_close(model(ids)[2:3], model(ids[2:3]))

    def test_eval_is_deterministic(self, model: NextItemModel) -> None:
        ids = self._batch()
        assert torch.equal(model(ids), model(ids))

    def test_scores_are_dot_products_with_the_shared_table(self, model: NextItemModel) -> None:
        ids = self._batch()
        every = model.score_all(ids)
        assert every.shape == (4, self.n_items + 1)
        assert torch.isneginf(every[:, 0]).all()
        candidates = torch.tensor([[1, 2, 3], [40, 7, 7], [5, 6, 1], [9, 8, 2]])
        picked = model.score_candidates(ids, candidates)
        torch.testing.assert_close(picked, torch.gather(every, 1, candidates))
        last = model.last_hidden(ids)
        torch.testing.assert_close(
            picked[:, 0], (last * model.item_table.lookup(candidates[:, 0])).sum(-1)
        )

    def test_gradients_reach_encoder_and_table_but_not_padding_row(
        self, model: NextItemModel
    ) -> None:
        model.train()
        ids = self._batch()
        model(ids).pow(2).sum().backward()
        grads = [p.grad for p in model.encoder.parameters() if p.requires_grad]
        assert any(g is not None and g.abs().sum() > 0 for g in grads)
        weight = next(model.item_table.parameters())
        assert weight.grad is not None
        assert weight.grad[0].abs().sum() == 0  # padding never feeds the encoder
        assert weight.grad[ids[ids != 0]].abs().sum() > 0
