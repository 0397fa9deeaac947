"""The three implementations compute the same function with the same optimizer math."""

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from dlcheck.bench import keras_impl, protocol, torch_impl, torch_inputs  # noqa: E402

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
    by_hand = x @ weights[0] + weights[1]
    by_hand = np.maximum(by_hand, 0) @ weights[2] + weights[3]
    by_hand = 1 / (1 + np.exp(-(np.maximum(by_hand, 0) @ weights[4] + weights[5])))
    np.testing.assert_allclose(k, by_hand[:, 0], atol=1e-6)
    np.testing.assert_allclose(t, k, atol=1e-6)
    for head in (0, 8, NUM_WORDS):  # all words as bags, some dense, all dense
        s = torch_impl.forward(weights, x, sparse=True, head=head)
        np.testing.assert_allclose(s, k, atol=1e-6)
    assert np.ptp(k) > 0.01  # the outputs are not all the same number


def _inputs(kind, x, labels=None, head=8):
    split = torch_impl._split_from_dense(x)
    if labels is not None:
        split.labels = labels
    if kind == "sparse":
        inputs = torch_inputs.SparseInputs(split, x.shape[1], "cpu", head=head)
    else:
        inputs = torch_inputs.DenseInputs(split, x.shape[1], "cpu")
    inputs.to_device()
    return inputs


@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_three_rmsprop_steps_match_keras(small, kind):
    """Keras's RMSprop (eps inside the sqrt, rho 0.9) and our loop move weights identically."""
    weights, x, y = small
    model = keras_impl.build(NUM_WORDS, weights)
    for _ in range(3):
        model.train_on_batch(x, y)
    keras_after = model.get_weights()

    import torch

    net = torch_impl.Net(weights, "cpu")
    inputs = _inputs(kind, x, y)
    for _ in range(3):
        batch, labels = next(inputs.batches(torch.arange(len(y)), len(y)))
        net.train_step(inputs, batch, labels)
    for ours, theirs in zip(net.params, keras_after, strict=True):
        np.testing.assert_allclose(ours.numpy(), theirs, atol=2e-5)
    moved = np.abs(net.params[0].numpy() - weights[0]).max()
    assert moved > 1e-4  # the steps really changed the weights
    assert not net.weights.w1_padded[NUM_WORDS].any()  # the padding row stays zero


@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_written_out_backward_equals_autograd(small, kind):
    """The hand-derived gradients are autograd's gradients of the mean BCE, layer by layer."""
    import torch

    weights, x, y = small
    net = torch_impl.Net(weights, "cpu")
    inputs = _inputs(kind, x, y)
    batch, labels = next(inputs.batches(torch.arange(len(y)), len(y)))
    net.train_step(inputs, batch, labels)  # leaves its gradients in net.grads

    params = [torch.tensor(w, requires_grad=True) for w in weights]
    w1, b1, w2, b2, w3, b3 = params
    h = torch.relu(torch.from_numpy(x) @ w1 + b1)
    logits = (torch.relu(h @ w2 + b2) @ w3 + b3)[:, 0]
    torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.from_numpy(y)).backward()
    for ours, param in zip(net.grads.as_list(), params, strict=True):
        torch.testing.assert_close(ours, param.grad, atol=1e-7, rtol=1e-5)
    assert net.grads.w1.abs().max() > 1e-4 and not net.grads.w1_padded[NUM_WORDS].any()


@pytest.mark.parametrize("head", [0, 8])
def test_shuffled_batches_hold_the_same_reviews(head):
    """Sparse and dense batches of a shuffled epoch give the same first layer, row for row."""
    import torch

    rng = np.random.default_rng(3)
    x = (rng.random((300, NUM_WORDS)) < 0.1).astype(np.float32)
    x[[5, 299]] = 0  # empty reviews, the last one included
    labels = np.arange(300, dtype=np.float32)  # labels name the rows
    dense, sparse = _inputs("dense", x, labels), _inputs("sparse", x, labels, head=head)
    w1 = torch.cat([torch.randn(NUM_WORDS, 16), torch.zeros(1, 16)])  # with the padding row
    order = torch.randperm(300, generator=torch.Generator().manual_seed(0))
    pairs = zip(dense.batches(order, 64), sparse.batches(order, 64), strict=True)
    seen = []
    for (d_batch, d_y), (s_batch, s_y) in pairs:
        torch.testing.assert_close(d_y, s_y)
        d = dense.first_layer(d_batch, w1)
        s = sparse.first_layer(s_batch, w1)
        torch.testing.assert_close(s, d, atol=1e-4, rtol=1e-5)
        seen.append(s_y)
    assert torch.equal(torch.cat(seen), order.float())  # every review once, in shuffled order


def test_chunks_hold_each_review_in_order():
    words = np.arange(40, dtype=np.int64)
    offsets = np.array([0, 0, 16, 17, 40])  # empty, exactly one chunk, one word, 23 words
    chunks, first = torch_inputs.chunked(words, offsets, pad=99)
    assert first.tolist() == [0, 0, 1, 2, 4]
    assert chunks[0].tolist() == list(range(16))
    assert chunks[1].tolist() == [16] + [99] * 15
    assert chunks[2:].ravel().tolist() == list(range(17, 40)) + [99] * 9


@pytest.mark.parametrize("head", [0, 8])
@pytest.mark.parametrize("path", ["by_word", "by_word_in_thread", "index_add"])
def test_sparse_steps_match_dense_steps(head, path):
    """Five shuffled epochs from word indices == dense epochs, with each backward path.

    by_word: the CPU's transposed-bag gradient; in_thread: epochs built in the
    second thread; index_add: the GPU's gradient (batches without a transpose).
    """
    import torch

    rng = np.random.default_rng(6)
    x = (rng.random((200, NUM_WORDS)) < 0.12).astype(np.float32)
    x[[0, 199]] = 0  # empty reviews, first and last
    labels = rng.integers(0, 2, 200).astype(np.float32)
    weights = protocol.initial_weights(NUM_WORDS, seed=2)
    after = {}
    for kind in ("dense", "sparse"):
        inputs = _inputs(kind, x, labels, head=head)
        inputs.prefetch = kind == "sparse" and path == "by_word_in_thread"
        net = torch_impl.Net(weights, "cpu")
        generator = torch.Generator().manual_seed(0)
        # 200 reviews, batches of 64: 4 steps (one short) per epoch
        epochs = torch_impl.shuffled_epochs(inputs, 64, generator, 5)
        if kind == "sparse" and path == "index_add":
            generator.manual_seed(0)
            orders = [torch.randperm(200, generator=generator) for _ in range(5)]
            epochs = [inputs.epoch(order, 64, train=False) for order in orders]
            assert epochs[0][0][0].rows_by_word is None
        for batches in epochs:
            loss, accuracy = torch_impl._run_epoch(net, inputs, batches)
        after[kind] = [p.numpy().copy() for p in net.params] + [float(loss), float(accuracy)]
    for sparse, dense in zip(after["sparse"][:6], after["dense"][:6], strict=True):
        np.testing.assert_allclose(sparse, dense, atol=1e-5)
    np.testing.assert_allclose(after["sparse"][6:], after["dense"][6:], atol=1e-5)
    for trained, start in zip(after["sparse"], weights, strict=False):
        assert np.abs(trained - start).max() > 1e-3  # 20 steps really moved every layer


@pytest.mark.parametrize("head", [0, 8])
def test_transposed_gradient_equals_index_add(head):
    """The CPU backward (bags grouped by word) is the GPU one (index_add_), bit for bit."""
    import torch

    rng = np.random.default_rng(7)
    x = (rng.random((150, NUM_WORDS)) < 0.2).astype(np.float32)
    x[3] = 0
    inputs = _inputs("sparse", x, head=head)
    order = torch.randperm(150, generator=torch.Generator().manual_seed(2))
    batch, _ = next(inputs.batches(order, 150))
    assert batch.rows_by_word is not None  # grouped by word, as on the CPU
    grad_out = torch.randn(150, 16)
    ours = torch.full((NUM_WORDS + 1, 16), 7.0)  # every row is written
    inputs.first_layer_grad(batch, grad_out, ours)
    batch.rows_by_word = None  # now the index_add_ path
    reference = torch.full((NUM_WORDS + 1, 16), 7.0)
    inputs.first_layer_grad(batch, grad_out, reference)
    assert torch.equal(ours[:NUM_WORDS], reference[:NUM_WORDS])
    assert not reference[NUM_WORDS].any()
    dense = torch.from_numpy(x[order.numpy()]).T @ grad_out  # X_batch^T @ grad_out
    torch.testing.assert_close(ours[:NUM_WORDS], dense, atol=1e-5, rtol=1e-5)


def test_prefetched_yields_everything_and_raises_producer_errors():
    assert list(torch_inputs.prefetched(iter(range(50)), ahead=2)) == list(range(50))

    def broken():
        yield 1
        raise ValueError("bad batch")

    got = []
    with pytest.raises(ValueError, match="bad batch"):
        for item in torch_inputs.prefetched(broken()):
            got.append(item)
    assert got == [1]


def test_prefetched_stops_its_thread_when_the_consumer_stops():
    import threading
    import time

    produced = []

    def endless():
        while True:
            produced.append(1)
            yield len(produced)

    stream = torch_inputs.prefetched(endless(), ahead=2)
    assert next(stream) == 1
    time.sleep(0.3)  # room for the producer to run ahead, as far as it may
    assert len(produced) == 3  # the one taken and two ahead, no more
    stream.close()  # runs the consumer's cleanup: stop and join
    assert not [t for t in threading.enumerate() if t.name == "dlcheck-batches"]
    assert len(produced) == 3
