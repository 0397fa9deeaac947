"""The book's network in native PyTorch: dense (`torch`) and from word indices (`torch-sparse`).

Same math as Keras: Dense 16 relu -> 16 relu -> 1 sigmoid, binary cross-entropy
(computed from the logit, as Keras's TF backend does), RMSprop with Keras's
update `w -= lr * g / sqrt(v + eps)` (torch.optim.RMSprop puts eps outside the
square root and has other defaults, so it is not used). All data stays on the
device; batches are gathered there, never copied from the host.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from dlcheck.bench import protocol, vectorise
from dlcheck.bench.data import Dataset, Split
from dlcheck.bench.protocol import Outcome, Phases, Spec


def _torch():
    import torch

    return torch


# ---------------------------------------------------------------- inputs


class DenseInputs:
    """Multi-hot rows resident on the device; a batch is an on-device gather."""

    def __init__(self, split: Split, num_words: int, device):
        self.host_x = vectorise.multi_hot(split, num_words)
        self.host_y = split.labels
        self.device = device

    def to_device(self):
        torch = _torch()
        self.x = torch.from_numpy(self.host_x).to(self.device)
        self.y = torch.from_numpy(self.host_y).to(self.device)
        self.n = len(self.host_y)
        del self.host_x

    def batches(self, order, batch_size):
        # One reused buffer: a fresh 20 MB tensor per batch costs page faults on the CPU.
        torch = _torch()
        buffer = torch.empty((batch_size, self.x.shape[1]), device=self.device)
        for start in range(0, self.n, batch_size):
            idx = order[start : start + batch_size]
            batch = buffer[: len(idx)]
            torch.index_select(self.x, 0, idx, out=batch)
            yield batch, self.y.index_select(0, idx)

    def first_layer(self, batch, w1, b1):
        return batch @ w1 + b1


class SparseInputs:
    """Each review's distinct words; a multi-hot row times W1 is the sum of those rows of W1."""

    def __init__(self, split: Split, num_words: int, device):
        self.host_words, self.host_offsets = vectorise.distinct_words(split, num_words)
        self.host_y = split.labels
        self.device = device

    def to_device(self):
        torch = _torch()
        self.device = torch.device(self.device)
        self.words = torch.from_numpy(self.host_words).to(self.device)
        self.offsets = torch.from_numpy(self.host_offsets).to(self.device)
        self.lengths = self.offsets[1:] - self.offsets[:-1]
        self.host_lengths = np.diff(self.host_offsets)
        self.y = torch.from_numpy(self.host_y).to(self.device)
        self.n = len(self.host_y)

    def batches(self, order, batch_size):
        """Permute the whole CSR once per epoch on the device; batches are then slices.

        One small device->host copy per epoch (the permuted offsets, to slice
        with), none per batch. On the CPU the host is the device, and NumPy's
        repeat does the permutation in about half the time torch needs.
        """
        if self.device.type == "cpu":
            offsets, words, rows = self._permute_numpy(order.numpy())
        else:
            offsets, words, rows = self._permute_torch(order)
        host_offsets = offsets.cpu().tolist()
        y = self.y.index_select(0, order)
        for start in range(0, self.n, batch_size):
            end = min(start + batch_size, self.n)
            lo, hi = host_offsets[start], host_offsets[end]
            yield Bags(words[lo:hi], offsets[start:end] - lo, rows[lo:hi] - start), y[start:end]

    def _permute_numpy(self, order):
        torch = _torch()
        lengths = self.host_lengths[order]
        offsets = np.zeros(self.n + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        shift = np.repeat(self.host_offsets[:-1][order] - offsets[:-1], lengths)
        words = self.host_words[np.arange(offsets[-1]) + shift]
        rows = np.repeat(np.arange(self.n), lengths)
        return tuple(torch.from_numpy(a) for a in (offsets, words, rows))

    def _permute_torch(self, order):
        torch = _torch()
        lengths = self.lengths.index_select(0, order)
        offsets = torch.zeros(self.n + 1, dtype=torch.int64, device=self.device)
        torch.cumsum(lengths, 0, out=offsets[1:])
        total = int(offsets[-1])
        # Word position p of new row i reads old position p + (start_i - offset_i): the
        # shift is constant per row, so scatter its per-row change and cumsum (cheaper
        # than repeat_interleave). Row ids are the same trick with a change of 1.
        shift = self.offsets.index_select(0, order) - offsets[:-1]
        # One spare slot: empty reviews at the end put their offsets at `total`.
        change = torch.zeros(total + 1, dtype=torch.int64, device=self.device)
        change.index_add_(0, offsets[:-1], torch.diff(shift, prepend=shift.new_zeros(1)))
        words = self.words.index_select(
            0, torch.arange(total, device=self.device) + change.cumsum(0)[:total]
        )
        change.zero_().index_add_(0, offsets[1:-1], torch.ones_like(offsets[1:-1]))
        return offsets, words, change.cumsum(0)[:total]

    def first_layer(self, batch, w1, b1):
        return _bag_sum(batch, w1) + b1


@dataclass
class Bags:
    """One batch of reviews as (word, review) pairs, grouped by review (CSR order).

    words: each review's distinct words, review after review; bag_offsets: where
    each review starts in `words`; rows: the review (0..batch-1) of each pair.
    """

    words: object
    bag_offsets: object
    rows: object

    def by_word(self, num_words):
        """The same pairs grouped by word (the transpose): (rows, offsets per word).

        A stable sort keeps each word's reviews in ascending order, the order in
        which index_add_ adds them, so sums over it are the same, bit for bit.
        """
        torch = _torch()
        # Sorting 16-bit keys is about 2x faster than 64-bit ones.
        narrow = torch.int16 if num_words <= torch.iinfo(torch.int16).max else torch.int32
        perm = torch.sort(self.words.to(narrow), stable=True).indices
        offsets = self.words.new_zeros(num_words)
        torch.cumsum(torch.bincount(self.words, minlength=num_words)[:-1], 0, out=offsets[1:])
        return self.rows.index_select(0, perm), offsets


def _bag_sum(batch, w1):
    """sum of W1's rows per review == multi-hot @ W1; its gradient is X^T @ grad_out.

    torch's own embedding_bag backward sorts the indices every step. On the CPU we
    use the batch's transpose: row w of the gradient is the sum of grad_out's rows
    for the reviews holding word w, one embedding_bag over grad_out (2x cheaper
    than scatter-adding one copied grad_out row per pair). Elsewhere (GPUs, fast
    atomics) it is an index_add_ of those rows.
    """
    torch = _torch()
    F = torch.nn.functional

    class BagSum(torch.autograd.Function):
        @staticmethod
        def forward(ctx, weight):
            ctx.shape = weight.shape
            return F.embedding_bag(batch.words, weight, batch.bag_offsets, mode="sum")

        @staticmethod
        def backward(ctx, grad_out):
            if grad_out.device.type == "cpu":
                rows, word_offsets = batch.by_word(ctx.shape[0])
                return F.embedding_bag(rows, grad_out, word_offsets, mode="sum")
            grad = grad_out.new_zeros(ctx.shape)
            return grad.index_add_(0, batch.words, grad_out.index_select(0, batch.rows))

    return BagSum.apply(w1)


# ---------------------------------------------------------------- model


class Net:
    """Parameters in Keras's layout (kernel: in x out) and Keras's RMSprop state."""

    def __init__(self, weights, device):
        torch = _torch()
        self.params = [torch.tensor(w, device=device, requires_grad=True) for w in weights]
        self.velocity = [torch.zeros_like(p) for p in self.params]
        self.denom = [torch.empty_like(p) for p in self.params]  # reused: no allocation per step

    def reset(self, weights):
        torch = _torch()
        with torch.no_grad():
            for p, w, v in zip(self.params, weights, self.velocity, strict=True):
                p.copy_(torch.from_numpy(w))
                v.zero_()

    def logits(self, inputs, batch):
        w1, b1, w2, b2, w3, b3 = self.params
        torch = _torch()
        h = torch.relu(inputs.first_layer(batch, w1, b1))
        h = torch.relu(h @ w2 + b2)
        return (h @ w3 + b3).squeeze(1)

    def step(self, loss, lr=protocol.LEARNING_RATE, rho=protocol.RHO, eps=protocol.EPSILON):
        torch = _torch()
        grads = torch.autograd.grad(loss, self.params)
        with torch.no_grad():
            # Per tensor, in place, into reused buffers: 30% cheaper than the _foreach_ ops
            # (a plain loop on the CPU anyway), same operations in the same order.
            for p, g, v, denom in zip(self.params, grads, self.velocity, self.denom, strict=True):
                v.mul_(rho).addcmul_(g, g, value=1 - rho)
                torch.add(v, eps, out=denom).sqrt_()
                p.addcdiv_(g, denom, value=-lr)


def _run_epoch(net, inputs, batch_size, generator, train=True):
    """One pass; returns (mean loss, accuracy) as device tensors (no sync per batch)."""
    torch = _torch()
    F = torch.nn.functional
    if train:
        order = torch.randperm(inputs.n, generator=generator, device="cpu").to(inputs.device)
    else:
        order = torch.arange(inputs.n, device=inputs.device)
    loss_sum = torch.zeros((), device=inputs.device)
    correct = torch.zeros((), device=inputs.device)
    for batch, y in inputs.batches(order, batch_size):
        with torch.set_grad_enabled(train):
            logits = net.logits(inputs, batch)
            loss = F.binary_cross_entropy_with_logits(logits, y)
        if train:
            net.step(loss)
        loss_sum += loss.detach() * len(y)
        correct += ((logits.detach() > 0).float() == y).sum()
    return loss_sum / inputs.n, correct / inputs.n


def forward(weights, x, *, sparse=False):
    """Sigmoid outputs for dense multi-hot rows x (numpy); used to compare implementations."""
    torch = _torch()
    net = Net(weights, "cpu")
    split = _split_from_dense(x)
    inputs = (SparseInputs if sparse else DenseInputs)(split, x.shape[1], "cpu")
    inputs.to_device()
    batch = next(inputs.batches(torch.arange(inputs.n), inputs.n))[0]
    with torch.no_grad():
        return torch.sigmoid(net.logits(inputs, batch)).numpy()


def _split_from_dense(x: np.ndarray) -> Split:
    rows, words = np.nonzero(x)
    offsets = np.zeros(len(x) + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=len(x)), out=offsets[1:])
    return Split(words.astype(np.int32), offsets, np.zeros(len(x), dtype=np.float32))


# ---------------------------------------------------------------- the run


def run(spec: Spec) -> dict:
    torch = _torch()
    sparse = spec.impl == "torch-sparse"
    if spec.threads:
        torch.set_num_threads(spec.threads)
    device = torch.device(spec.device)
    out = Outcome(impl=spec.impl, device=spec.device, backend="torch")
    out.versions = {"torch": torch.__version__}
    out.threads = torch.get_num_threads()
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"torch {torch.__version__} sees no CUDA GPU (CPU-only build or driver problem)"
            )
        props = torch.cuda.get_device_properties(device)
        out.gpu_uuid = str(getattr(props, "uuid", "")) or None
        out.versions["cuda"] = torch.version.cuda
        out.versions["gpu"] = props.name

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    phases = Phases(sync)
    train, test = Dataset.load_prepared(spec.prepared)
    make = SparseInputs if sparse else DenseInputs
    with phases("vectorise"):
        train_in = make(train, spec.num_words, device)
        test_in = make(test, spec.num_words, device)
        if spec.protocol == "book":
            val_in = make(train.head(protocol.VALIDATION), spec.num_words, device)
            part_in = make(_tail(train, protocol.VALIDATION), spec.num_words, device)
    with phases("to_device"):
        for inputs in [train_in, test_in] + ([val_in, part_in] if spec.protocol == "book" else []):
            inputs.to_device()
    weights = protocol.initial_weights(spec.num_words, spec.seed)
    generator = torch.Generator().manual_seed(spec.seed)
    with phases("build"):
        net = Net(weights, device)
    out.placed_on = str(net.params[0].device)
    with phases("warmup"):  # a throwaway epoch; weights and optimizer state reset after it
        _run_epoch(net, train_in, spec.batch_size, generator)
    net.reset(weights)

    if spec.protocol == "book":
        curves = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": [], "epoch_s": []}
        for _ in range(protocol.BOOK_EPOCHS):
            sync()
            started = time.perf_counter()
            loss, acc = _run_epoch(net, part_in, spec.batch_size, generator)
            val_loss, val_acc = _run_epoch(net, val_in, spec.batch_size, None, train=False)
            sync()
            curves["epoch_s"].append(time.perf_counter() - started)
            for key, value in zip(curves, (loss, acc, val_loss, val_acc), strict=False):
                curves[key].append(float(value))
        out.history["book"] = curves
        net.reset(weights)

    curves = {"loss": [], "accuracy": []}
    for _ in range(spec.epochs):
        sync()
        started = time.perf_counter()
        loss, acc = _run_epoch(net, train_in, spec.batch_size, generator)
        sync()
        out.epoch_times.append(time.perf_counter() - started)
        curves["loss"].append(float(loss))
        curves["accuracy"].append(float(acc))
    out.history["retrain"] = curves
    out.train_samples = train_in.n
    with phases("evaluate"):
        loss, acc = _run_epoch(net, test_in, spec.batch_size, None, train=False)
        out.test_loss, out.test_accuracy = float(loss), float(acc)
    out.phases = phases.seconds
    if sparse:
        out.notes.append("first layer as EmbeddingBag(sum) over each review's distinct words")
    return out.to_dict()


def _tail(split: Split, start: int) -> Split:
    base = split.offsets[start]
    return Split(split.indices[base:], split.offsets[start:] - base, split.labels[start:])
