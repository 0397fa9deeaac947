"""Model inputs for the native PyTorch loop: shuffled batches and the first layer's math.

`DenseInputs` holds the book's multi-hot rows; `SparseInputs` holds each review's
distinct words. Both give the first layer (multi-hot @ W1) and its weight
gradient (X_batch^T @ grad) for a batch, so the training loop is the same.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass

import numpy as np

from dlcheck.bench import vectorise
from dlcheck.bench.data import Split

CHUNK = 16  # words per chunk (a power of two: pair -> chunk is a shift)
CHUNK_SHIFT = CHUNK.bit_length() - 1
# Word indices, rows and offsets as int32: half the memory traffic of int64 for
# the epoch's ~2.4M pairs (embedding_bag takes either, if both match).
INDEX = np.int32


def _torch():
    import torch

    return torch


class DenseInputs:
    """Multi-hot rows resident on the device; a batch is an on-device gather."""

    # Never built ahead: all batches share one buffer, and the gather is a single op.
    prefetch = False

    def __init__(self, split: Split, num_words: int, device):
        self.host_x = vectorise.multi_hot(split, num_words)
        self.host_y = split.labels
        self.num_words = num_words
        self.device = device

    def to_device(self):
        torch = _torch()
        self.x = torch.from_numpy(self.host_x).to(self.device)
        self.y = torch.from_numpy(self.host_y).to(self.device)
        self.n = len(self.host_y)
        del self.host_x

    def epoch(self, order, batch_size, train=True):
        """The epoch's batches, gathered one at a time (a lazy iterator)."""
        return self.batches(order, batch_size)

    def batches(self, order, batch_size):
        # One reused buffer: a fresh 20 MB tensor per batch costs page faults on the CPU.
        torch = _torch()
        buffer = torch.empty((batch_size, self.x.shape[1]), device=self.device)
        for start in range(0, self.n, batch_size):
            idx = order[start : start + batch_size]
            batch = buffer[: len(idx)]
            torch.index_select(self.x, 0, idx, out=batch)
            yield batch, self.y.index_select(0, idx)

    def first_layer(self, batch, w1_padded):
        return batch @ w1_padded[: self.num_words]

    def first_layer_grad(self, batch, grad_out, grad_w1_padded):
        _torch().mm(batch.t(), grad_out, out=grad_w1_padded[: self.num_words])


def chunked(words: np.ndarray, offsets: np.ndarray, pad: int) -> tuple[np.ndarray, np.ndarray]:
    """Each review's words in rows of CHUNK, the last one padded with `pad`.

    Returns (chunks, first_chunk): review i owns chunks[first_chunk[i]:first_chunk[i+1]].
    """
    lengths = np.diff(offsets)
    first_chunk = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(-(-lengths // CHUNK), out=first_chunk[1:])
    chunks = np.full((int(first_chunk[-1]), CHUNK), pad, dtype=INDEX)
    position = np.arange(len(words)) - np.repeat(offsets[:-1], lengths)
    chunks.reshape(-1)[np.repeat(first_chunk[:-1] * CHUNK, lengths) + position] = words
    return chunks, first_chunk


HEAD_WORDS = 128  # the most frequent words (indices are frequency ranks), held as a dense block


class SparseInputs:
    """Each review's distinct words; a multi-hot row times W1 is the sum of those rows of W1.

    Word indices are frequency ranks, so the first `head` words sit in a third
    of all (review, word) pairs: those are kept as a small dense multi-hot block
    (n x head), whose products are cheap matmuls. The rest, the tail, are listed
    per review in chunks of 16 (see `chunked`), padded with index num_words,
    which points at W1's spare zero row: shuffling then gathers whole 128-byte
    chunks instead of single words.
    """

    prefetch = False  # build batches in a second thread (see `prefetched`)

    def __init__(self, split: Split, num_words: int, device, head: int = HEAD_WORDS):
        words, offsets = vectorise.distinct_words(split, num_words)
        self.head = head = min(head, num_words)
        review = np.repeat(np.arange(len(split)), np.diff(offsets))
        in_head = words < head
        self.host_head = np.zeros((len(split), head), dtype=np.float32)
        self.host_head[review[in_head], words[in_head]] = 1.0
        tail_offsets = np.zeros_like(offsets)
        np.cumsum(np.bincount(review[~in_head], minlength=len(split)), out=tail_offsets[1:])
        self.host_chunks, self.host_first = chunked(words[~in_head], tail_offsets, pad=num_words)
        self.host_y = split.labels
        self.num_words = num_words
        self.device = device

    def to_device(self):
        torch = _torch()
        self.device = torch.device(self.device)
        self.head_x = torch.from_numpy(self.host_head).to(self.device)
        self.chunks = torch.from_numpy(self.host_chunks).to(self.device)
        first = torch.from_numpy(self.host_first).to(self.device)
        self.first_chunk = first[:-1]
        self.chunk_counts = first[1:] - first[:-1]
        self.total_chunks = int(self.host_first[-1])
        self.y = torch.from_numpy(self.host_y).to(self.device)
        self.n = len(self.host_y)
        self.reviews = torch.arange(self.n, device=self.device)
        del self.host_head, self.host_chunks

    def batches(self, order, batch_size):
        return iter(self.epoch(order, batch_size))

    def epoch(self, order, batch_size, train=True):
        """All of an epoch's batches at once, as views of a few epoch-wide tensors.

        About 20 vectorised ops per epoch plus one sort per batch, where building
        batch by batch took ~15 ops each. One device->host copy per epoch (where
        each batch's chunks start), none per batch. Training batches on the CPU
        also carry their transpose for the backward pass (see `_group_by_word`).
        """
        torch = _torch()
        n, device = self.n, self.device
        counts = self.chunk_counts.index_select(0, order)
        starts = torch.zeros(n + 1, dtype=torch.int64, device=device)
        torch.cumsum(counts, 0, out=starts[1:])
        total = self.total_chunks  # the same for every order: no sync to learn it
        shift = self.first_chunk.index_select(0, order) - starts[:-1]
        chunk_ids = torch.repeat_interleave(shift, counts, output_size=total)
        chunk_ids += torch.arange(total, device=device)
        chunks = self.chunks.index_select(0, chunk_ids)  # the epoch's words, batch after batch
        place = torch.repeat_interleave(self.reviews, counts, output_size=total)
        batch_of_chunk = torch.div(place, batch_size, rounding_mode="floor")
        chunk_rows = (place - batch_of_chunk * batch_size).int()  # each chunk's row in its batch
        first = starts[::batch_size]  # where each batch's chunks start
        if n % batch_size:  # and where the short last batch ends
            first = torch.cat([first, starts[-1:]])
        bag_offsets = (starts[:-1] - first[:-1].repeat_interleave(batch_size)[:n]) * CHUNK
        bag_offsets = bag_offsets.int()
        head = self.head_x.index_select(0, order)
        y = self.y.index_select(0, order)
        bounds = first.cpu().tolist()
        by_word = (None, None)
        if train and device.type == "cpu":
            by_word = self._group_by_word(chunks, batch_of_chunk, chunk_rows, first, bounds)
        words = chunks.view(-1)
        batches = []
        for k, start in enumerate(range(0, n, batch_size)):
            end = min(start + batch_size, n)
            lo, hi = bounds[k], bounds[k + 1]
            bags = Bags(
                head=head[start:end],
                words=words[lo * CHUNK : hi * CHUNK],
                bag_offsets=bag_offsets[start:end],
                chunk_rows=chunk_rows[lo:hi],
            )
            if by_word[0] is not None:
                bags.rows_by_word = by_word[0][lo * CHUNK : hi * CHUNK]
                bags.word_offsets = by_word[1][k]
            batches.append((bags, y[start:end]))
        return batches

    def _group_by_word(self, chunks, batch_of_chunk, chunk_rows, first, bounds):
        """Each batch's transpose: its pairs' rows grouped by word, and where each word starts.

        One stable sort per batch, written into epoch-wide buffers (one sort of
        a batches x pairs matrix, or of (batch, word) keys, was 2-10x slower).
        Stable: each word's reviews stay in ascending order, the order in which
        index_add_ adds them, so the sums are the same, bit for bit. The
        padding pairs (word num_words) sort last and are left out by the offsets.
        """
        torch = _torch()
        num_words, total = self.num_words, len(chunks)
        # 16-bit keys sort about 2x faster than 64-bit ones.
        narrow = torch.int16 if num_words < torch.iinfo(torch.int16).max else torch.int32
        keys = chunks.view(-1).to(narrow)
        sorted_keys = torch.empty_like(keys)
        pair_order = torch.empty(keys.shape, dtype=torch.int64)
        for lo, hi in zip(bounds, bounds[1:], strict=False):
            part = slice(lo * CHUNK, hi * CHUNK)
            torch.sort(keys[part], stable=True, out=(sorted_keys[part], pair_order[part]))
        # Each sorted pair's position in its batch -> its chunk in the epoch -> its row.
        chunk_of_pair = (pair_order.view(total, CHUNK) >> CHUNK_SHIFT).add_(
            first.index_select(0, batch_of_chunk)[:, None]
        )
        rows_by_word = chunk_rows.index_select(0, chunk_of_pair.view(-1))
        keyed = chunks + (batch_of_chunk.int() * (num_words + 1))[:, None]  # (batch, word): one key
        counts = torch.bincount(keyed.view(-1), minlength=(len(bounds) - 1) * (num_words + 1))
        counts = counts.view(len(bounds) - 1, num_words + 1)
        word_offsets = torch.zeros(counts.shape, dtype=chunks.dtype)
        torch.cumsum(counts[:, :num_words], 1, dtype=chunks.dtype, out=word_offsets[:, 1:])
        return rows_by_word, word_offsets

    def first_layer(self, bags, w1_padded):
        torch = _torch()
        bag = torch.nn.functional.embedding_bag
        tail = bag(bags.words, w1_padded, bags.bag_offsets, mode="sum")
        return tail.addmm_(bags.head, w1_padded[: self.head])

    def first_layer_grad(self, bags, grad_out, grad_w1_padded):
        """X_batch^T @ grad_out: row w sums grad_out's rows for the reviews holding word w.

        Head rows: one matmul. Tail rows, on the CPU: one embedding_bag over
        grad_out with the pairs grouped by word (the same additions, in the same
        order, as index_add_, about 2x cheaper). Elsewhere (GPUs: fast atomics)
        an index_add_ of one grad_out row per pair.
        """
        torch = _torch()
        head, num_words = self.head, self.num_words
        if bags.rows_by_word is not None:
            tail = torch.nn.functional.embedding_bag(
                bags.rows_by_word, grad_out, bags.word_offsets[head:], mode="sum",
                include_last_offset=True,  # the last bag ends where the padding pairs start
            )
            grad_w1_padded[head:num_words].copy_(tail)
        else:
            rows = bags.chunk_rows.repeat_interleave(CHUNK)
            grad_w1_padded.zero_().index_add_(0, bags.words, grad_out.index_select(0, rows))
            grad_w1_padded[num_words].zero_()  # the padding row never learns
        torch.mm(bags.head.t(), grad_out, out=grad_w1_padded[:head])


@dataclass
class Bags:
    """One batch: the head words as a dense block, the tail as (word, review) pairs.

    words: each review's tail chunks (CHUNK pairs each), review after review;
    bag_offsets: where each review starts in `words`; chunk_rows: the review
    (0..batch-1) of each chunk.
    """

    head: object
    words: object
    bag_offsets: object
    chunk_rows: object
    rows_by_word: object = None
    word_offsets: object = None


def prefetched(items, ahead: int = 1):
    """Yield from the iterable `items`, each produced in a second thread before it is asked for.

    At most `ahead` items are built beyond the one in use, so memory stays
    bounded (an epoch of torch-sparse batches is about 60 MB). torch ops release
    the GIL, so building overlaps the training step on another core. An error
    in the producer is raised here.
    """
    ready: queue.SimpleQueue = queue.SimpleQueue()
    room = threading.Semaphore(ahead)
    stop = threading.Event()
    done = object()

    def produce():
        try:
            iterator = iter(items)
            while True:
                while not room.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                item = next(iterator, done)
                ready.put(item)
                if item is done:
                    return
        except BaseException as error:  # handed to the consumer, raised there
            ready.put(error)

    thread = threading.Thread(target=produce, name="dlcheck-batches", daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            room.release()  # this one is taken: the producer may build the next
            yield item
    finally:
        stop.set()
        thread.join()
