"""The book's network in native PyTorch: dense (`torch`) and from word indices (`torch-sparse`).

Same math as Keras: Dense 16 relu -> 16 relu -> 1 sigmoid, binary cross-entropy
(computed from the logit, as Keras's TF backend does), RMSprop with Keras's
update `w -= lr * g / sqrt(v + eps)` (torch.optim.RMSprop puts eps outside the
square root and has other defaults, so it is not used). The backward pass is
written out: for layers this small, autograd's bookkeeping cost as much as the
math. All data stays on the device; batches are gathered there, never copied
from the host.
"""

from __future__ import annotations

import time

import numpy as np

from dlcheck.bench import protocol
from dlcheck.bench.data import Dataset, Split
from dlcheck.bench.protocol import HIDDEN, Outcome, Phases, Spec
from dlcheck.bench.torch_inputs import HEAD_WORDS, DenseInputs, SparseInputs, prefetched
from dlcheck.children import report_progress


def _torch():
    import torch

    return torch


class _Layers:
    """Views of one flat buffer in Keras's layout (kernels: in x out).

    W1 has one spare zero row after its num_words rows: torch-sparse pads
    reviews to whole chunks with that index. Its gradient is always zero, so
    RMSprop leaves it at zero.
    """

    def __init__(self, flat, num_words):
        sizes = [(num_words + 1) * HIDDEN, HIDDEN, HIDDEN * HIDDEN, HIDDEN, HIDDEN, 1]
        w1p, self.b1, w2, self.b2, w3, self.b3 = flat.split(sizes)
        self.w1_padded = w1p.view(num_words + 1, HIDDEN)
        self.w1 = self.w1_padded[:num_words]
        self.w2 = w2.view(HIDDEN, HIDDEN)
        self.w3 = w3.view(HIDDEN, 1)

    def as_list(self):
        return [self.w1, self.b1, self.w2, self.b2, self.w3, self.b3]


class Net:
    """The book's network, its gradients and Keras's RMSprop state, each in one flat buffer.

    One buffer per role makes the optimizer 5 passes per step instead of 30.
    """

    def __init__(self, weights, device):
        torch = _torch()
        self.num_words = weights[0].shape[0]
        self.flat = torch.tensor(self._flatten(weights), device=device)
        self.grad_flat = torch.zeros_like(self.flat)
        self.velocity = torch.zeros_like(self.flat)
        self.denom = torch.empty_like(self.flat)  # reused: no allocation per step
        self.weights = _Layers(self.flat, self.num_words)
        self.grads = _Layers(self.grad_flat, self.num_words)

    def _flatten(self, weights):
        pad_row = np.zeros(HIDDEN, dtype=np.float32)
        return np.concatenate([weights[0].ravel(), pad_row, *(w.ravel() for w in weights[1:])])

    @property
    def params(self):
        return self.weights.as_list()

    def reset(self, weights):
        torch = _torch()
        self.flat.copy_(torch.from_numpy(self._flatten(weights)))
        self.velocity.zero_()

    def forward(self, inputs, batch):
        """Logits (batch x 1), and the two hidden activations the backward pass needs."""
        torch = _torch()
        w = self.weights
        h1 = torch.relu_(inputs.first_layer(batch, w.w1_padded).add_(w.b1))
        h2 = torch.relu_(torch.addmm(w.b2, h1, w.w2))
        return torch.addmm(w.b3, h2, w.w3), h1, h2

    def train_step(self, inputs, batch, y):
        """One RMSprop step on the batch's mean binary cross-entropy; returns the logits."""
        torch = _torch()
        relu_grad = torch.ops.aten.threshold_backward  # grad where the output was > 0, else 0
        w, g = self.weights, self.grads
        logits, h1, h2 = self.forward(inputs, batch)
        # d(mean BCE)/d(logit) = (sigmoid(logit) - y) / batch
        d3 = torch.sigmoid(logits).sub_(y.unsqueeze(1)).div_(len(y))
        torch.mm(h2.t(), d3, out=g.w3)
        torch.sum(d3, 0, out=g.b3)
        d2 = relu_grad(torch.mm(d3, w.w3.t()), h2, 0)
        torch.mm(h1.t(), d2, out=g.w2)
        torch.sum(d2, 0, out=g.b2)
        d1 = relu_grad(torch.mm(d2, w.w2.t()), h1, 0)
        torch.sum(d1, 0, out=g.b1)
        inputs.first_layer_grad(batch, d1, g.w1_padded)
        self._rmsprop()
        return logits

    def _rmsprop(self, lr=protocol.LEARNING_RATE, rho=protocol.RHO, eps=protocol.EPSILON):
        torch = _torch()
        g, v = self.grad_flat, self.velocity
        v.mul_(rho).addcmul_(g, g, value=1 - rho)
        torch.add(v, eps, out=self.denom).sqrt_()
        self.flat.addcdiv_(g, self.denom, value=-lr)


def _run_epoch(net, inputs, batches, train=True):
    """One pass over `batches`; returns (mean loss, accuracy) as device tensors (no sync).

    The loss is the mean over samples of each batch's loss when it was computed,
    as Keras's `fit` reports it (a batch-size-weighted mean of batch losses).
    """
    torch = _torch()
    logits, labels = [], []
    for batch, y in batches:
        if train:
            logits.append(net.train_step(inputs, batch, y))
        else:
            with torch.no_grad():
                logits.append(net.forward(inputs, batch)[0])
        labels.append(y)
    logits, labels = torch.cat(logits)[:, 0], torch.cat(labels)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
    return loss, ((logits > 0).float() == labels).float().mean()


def shuffled_epochs(inputs, batch_size, generator, count):
    """`count` freshly shuffled epochs of batches, as Keras's `fit` shuffles.

    The permutations are drawn up front, so they do not depend on threads.
    With inputs.prefetch, each epoch is built in a second thread while the
    previous one trains.
    """
    torch = _torch()
    orders = [torch.randperm(inputs.n, generator=generator) for _ in range(count)]
    epochs = (inputs.epoch(order.to(inputs.device), batch_size) for order in orders)
    return prefetched(epochs) if inputs.prefetch else epochs


def in_order(inputs, batch_size):
    """Evaluation batches: every review once, in file order."""
    torch = _torch()
    return inputs.epoch(torch.arange(inputs.n, device=inputs.device), batch_size, train=False)


def forward(weights, x, *, sparse=False, head=HEAD_WORDS):
    """Sigmoid outputs for dense multi-hot rows x (numpy); used to compare implementations."""
    torch = _torch()
    net = Net(weights, "cpu")
    split = _split_from_dense(x)
    if sparse:
        inputs = SparseInputs(split, x.shape[1], "cpu", head=head)
    else:
        inputs = DenseInputs(split, x.shape[1], "cpu")
    inputs.to_device()
    batch = next(iter(in_order(inputs, inputs.n)))[0]
    with torch.no_grad():
        return torch.sigmoid(net.forward(inputs, batch)[0][:, 0]).numpy()


def _split_from_dense(x: np.ndarray) -> Split:
    rows, words = np.nonzero(x)
    offsets = np.zeros(len(x) + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=len(x)), out=offsets[1:])
    return Split(words.astype(np.int32), offsets, np.zeros(len(x), dtype=np.float32))


# ---------------------------------------------------------------- the run


def run(spec: Spec) -> dict:
    torch = _torch()
    sparse = spec.impl == "torch-sparse"
    device = torch.device(spec.device)
    threads = spec.threads or torch.get_num_threads()
    # torch-sparse on the CPU: a second thread builds the next epoch's batches
    # (the shuffle gather and the by-word sorts) while the steps run, and each
    # thread runs its ops on one core: they are too small to split, and more
    # OpenMP threads than free cores made epochs several times slower.
    prefetch = sparse and device.type == "cpu" and spec.batch_thread
    torch.set_num_threads(1 if prefetch else threads)
    out = Outcome(impl=spec.impl, device=spec.device, backend="torch")
    out.versions = {"torch": torch.__version__}
    out.threads = 2 if prefetch else torch.get_num_threads()
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
            if prefetch:
                inputs.prefetch = True
    weights = protocol.initial_weights(spec.num_words, spec.seed)
    generator = torch.Generator().manual_seed(spec.seed)
    with phases("build"):
        net = Net(weights, device)
    out.placed_on = str(net.params[0].device)
    # One stream for the warm-up and the timed epochs: the first timed epoch is
    # built while the warm-up trains, as every later one is.
    train_epochs = shuffled_epochs(train_in, spec.batch_size, generator, 1 + spec.epochs)
    with phases("warmup"):  # a throwaway epoch; weights and optimizer state reset after it
        _run_epoch(net, train_in, next(train_epochs))
    net.reset(weights)

    if spec.protocol == "book":
        curves = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": [], "epoch_s": []}
        part_epochs = shuffled_epochs(part_in, spec.batch_size, generator, protocol.BOOK_EPOCHS)
        for _ in range(protocol.BOOK_EPOCHS):
            sync()
            started = time.perf_counter()
            loss, acc = _run_epoch(net, part_in, next(part_epochs))
            val_batches = in_order(val_in, spec.batch_size)
            val_loss, val_acc = _run_epoch(net, val_in, val_batches, train=False)
            sync()
            curves["epoch_s"].append(time.perf_counter() - started)
            for key, value in zip(curves, (loss, acc, val_loss, val_acc), strict=False):
                curves[key].append(float(value))
            report_progress(f"book epoch {len(curves['epoch_s'])}/{protocol.BOOK_EPOCHS}")
        out.history["book"] = curves
        net.reset(weights)

    curves = {"loss": [], "accuracy": []}
    for _ in range(spec.epochs):
        sync()
        started = time.perf_counter()
        loss, acc = _run_epoch(net, train_in, next(train_epochs))  # waiting for it counts
        sync()
        out.epoch_times.append(time.perf_counter() - started)
        curves["loss"].append(float(loss))
        curves["accuracy"].append(float(acc))
        report_progress(f"timed epoch {len(out.epoch_times)}/{spec.epochs}")
    out.history["retrain"] = curves
    out.train_samples = train_in.n
    with phases("evaluate"):
        loss, acc = _run_epoch(net, test_in, in_order(test_in, spec.batch_size), train=False)
        out.test_loss, out.test_accuracy = float(loss), float(acc)
    out.phases = phases.seconds
    if sparse:
        out.notes.append("first layer as EmbeddingBag(sum) over each review's distinct words")
    if prefetch:
        out.notes.append("each epoch's batches built in a second thread during the previous one")
    return out.to_dict()


def _tail(split: Split, start: int) -> Split:
    base = split.offsets[start]
    return Split(split.indices[base:], split.offsets[start:] - base, split.labels[start:])
