"""The three implementations compute the same function with the same optimizer math."""

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from dlcheck.bench import keras_impl, protocol, torch_impl  # noqa: E402

NUM_WORDS = 60


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(1)
    weights = protocol.initial_weights(NUM_WORDS, seed=5)
    weights = [w + rng.normal(0, 0.05, w.shape).astype(np.float32) for w in weights]  # non-zero b
    x = (rng.random((32, NUM_WORDS)) < 0.15).astype(np.float32)
    x[0] = 0  # an empty review
    y = rng.integers(0, 2, 32).astype(np.float32)
    return weights, x, y


def test_initial_weights_are_keras_glorot_uniform():
    w1, b1, w2, b2, w3, b3 = protocol.initial_weights(10000, seed=0)
    assert w1.shape == (10000, 16) and w3.shape == (16, 1) and not b1.any()
    limit = np.sqrt(6 / (10000 + 16))
    assert np.abs(w1).max() <= limit and np.abs(w1).max() > 0.99 * limit
    assert sum(w.size for w in (w1, b1, w2, b2, w3, b3)) == 160305  # the book's model


def test_forward_passes_agree(small):
    weights, x, _ = small
    k = keras_impl.forward(weights, x)
    t = torch_impl.forward(weights, x)
    s = torch_impl.forward(weights, x, sparse=True)
    by_hand = x @ weights[0] + weights[1]
    by_hand = np.maximum(by_hand, 0) @ weights[2] + weights[3]
    by_hand = 1 / (1 + np.exp(-(np.maximum(by_hand, 0) @ weights[4] + weights[5])))
    np.testing.assert_allclose(k, by_hand[:, 0], atol=1e-6)
    np.testing.assert_allclose(t, k, atol=1e-6)
    np.testing.assert_allclose(s, k, atol=1e-6)
    assert np.ptp(k) > 0.01  # the outputs are not all the same number


@pytest.mark.parametrize("sparse", [False, True])
def test_one_rmsprop_step_matches_keras(small, sparse):
    """Keras's RMSprop (eps inside the sqrt, rho 0.9) and our loop move weights identically."""
    weights, x, y = small
    model = keras_impl.build(NUM_WORDS, weights)
    for _ in range(3):
        model.train_on_batch(x, y)
    keras_after = model.get_weights()

    import torch

    net = torch_impl.Net(weights, "cpu")
    split = torch_impl._split_from_dense(x)
    split.labels = y
    kind = torch_impl.SparseInputs if sparse else torch_impl.DenseInputs
    inputs = kind(split, NUM_WORDS, "cpu")
    inputs.to_device()
    for _ in range(3):
        batch, labels = next(inputs.batches(torch.arange(len(y)), len(y)))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            net.logits(inputs, batch), labels
        )
        net.step(loss)
    for ours, theirs in zip(net.params, keras_after, strict=True):
        np.testing.assert_allclose(ours.detach().numpy(), theirs, atol=2e-5)
    moved = np.abs(net.params[0].detach().numpy() - weights[0]).max()
    assert moved > 1e-4  # the step really changed the weights


def test_shuffled_batches_hold_the_same_reviews():
    """Sparse and dense batches of a shuffled epoch give the same first layer, row for row."""
    import torch

    rng = np.random.default_rng(3)
    x = (rng.random((300, NUM_WORDS)) < 0.1).astype(np.float32)
    x[5] = 0  # an empty review
    split = torch_impl._split_from_dense(x)
    split.labels = np.arange(300, dtype=np.float32)  # labels name the rows
    dense = torch_impl.DenseInputs(split, NUM_WORDS, "cpu")
    sparse = torch_impl.SparseInputs(split, NUM_WORDS, "cpu")
    dense.to_device()
    sparse.to_device()
    w1 = torch.randn(NUM_WORDS, 16)
    b1 = torch.zeros(16)
    order = torch.randperm(300, generator=torch.Generator().manual_seed(0))
    pairs = zip(dense.batches(order, 64), sparse.batches(order, 64), strict=True)
    seen = []
    for (d_batch, d_y), (s_batch, s_y) in pairs:
        torch.testing.assert_close(d_y, s_y)
        d = dense.first_layer(d_batch, w1, b1)
        s = sparse.first_layer(s_batch, w1, b1)
        torch.testing.assert_close(s, d, atol=1e-4, rtol=1e-5)
        seen.append(s_y)
    assert torch.equal(torch.cat(seen), order.float())  # every review once, in shuffled order


def test_device_and_host_shuffles_agree():
    """The torch-only shuffle (used on GPUs) equals the NumPy one (used on the CPU)."""
    import torch

    rng = np.random.default_rng(4)
    x = (rng.random((257, NUM_WORDS)) < 0.1).astype(np.float32)
    x[[0, 9, 256]] = 0  # empty reviews, first and last included
    inputs = torch_impl.SparseInputs(torch_impl._split_from_dense(x), NUM_WORDS, "cpu")
    inputs.to_device()
    shuffled = torch.randperm(257, generator=torch.Generator().manual_seed(1))
    empty_last = torch.cat([torch.arange(1, 257), torch.tensor([0])])
    for order in (shuffled, empty_last, torch.arange(257)):
        for ours, theirs in zip(
            inputs._permute_torch(order), inputs._permute_numpy(order.numpy()), strict=True
        ):
            assert torch.equal(ours, theirs)


def test_sparse_steps_match_dense_steps():
    """Five shuffled RMSprop steps from word indices (transposed-bag gradient) == dense steps."""
    import torch

    rng = np.random.default_rng(6)
    x = (rng.random((200, NUM_WORDS)) < 0.12).astype(np.float32)
    x[[0, 199]] = 0  # empty reviews, first and last
    split = torch_impl._split_from_dense(x)
    split.labels = rng.integers(0, 2, 200).astype(np.float32)
    weights = protocol.initial_weights(NUM_WORDS, seed=2)
    after = {}
    for kind in (torch_impl.DenseInputs, torch_impl.SparseInputs):
        inputs = kind(split, NUM_WORDS, "cpu")
        inputs.to_device()
        net = torch_impl.Net(weights, "cpu")
        generator = torch.Generator().manual_seed(0)
        for _ in range(5):  # 200 reviews, batches of 64: 4 steps (one short) per epoch
            torch_impl._run_epoch(net, inputs, 64, generator)
        after[kind] = [p.detach().numpy() for p in net.params]
    for sparse, dense, start in zip(
        after[torch_impl.SparseInputs], after[torch_impl.DenseInputs], weights, strict=True
    ):
        np.testing.assert_allclose(sparse, dense, atol=1e-5)
        assert np.abs(sparse - start).max() > 1e-3  # 20 steps really moved every layer


def test_transposed_gradient_equals_index_add():
    """The CPU backward (bags grouped by word) is the same sum as index_add_, bit for bit."""
    import torch

    rng = np.random.default_rng(7)
    x = (rng.random((150, NUM_WORDS)) < 0.2).astype(np.float32)
    x[3] = 0
    inputs = torch_impl.SparseInputs(torch_impl._split_from_dense(x), NUM_WORDS, "cpu")
    inputs.to_device()
    order = torch.randperm(150, generator=torch.Generator().manual_seed(2))
    batch, _ = next(inputs.batches(order, 150))
    grad_out = torch.randn(150, 16)
    rows, offsets = batch.by_word(NUM_WORDS)
    ours = torch.nn.functional.embedding_bag(rows, grad_out, offsets, mode="sum")
    reference = torch.zeros(NUM_WORDS, 16).index_add_(
        0, batch.words, grad_out.index_select(0, batch.rows)
    )
    assert torch.equal(ours, reference)
    dense = torch.from_numpy(x[order.numpy()]).T @ grad_out  # X_batch^T @ grad_out
    torch.testing.assert_close(ours, dense, atol=1e-5, rtol=1e-5)
