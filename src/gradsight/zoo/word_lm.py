"""The pytorch/examples word-level language model, on a generated corpus.

After pytorch/examples `word_language_model/model.py` (`RNNModel`: encoder embedding, an
LSTM/GRU/tanh-RNN/ReLU-RNN, linear decoder, optional weight tying, `init_weights` uniform in
[-0.1, 0.1]) and `main.py` (`batchify`, `get_batch` with bptt, `repackage_hidden`, and the
loop without an optimizer object: `model.zero_grad()`, `loss.backward()`,
`clip_grad_norm_(model.parameters(), clip)`, `p.data.add_(p.grad, alpha=-lr)`; lr 20, clip
0.25, lr divided by 4 whenever the validation loss stops improving at the end of an epoch).

The corpus is a stream of sentences `<open_k> w_1 .. w_n <close_k> <eos>`: the words follow
a sparse random Markov chain shared by all sentences, and the closing bracket repeats the
opening one, 12 to 30 words back. Predicting it needs a memory over that span, which is
what gradients that vanish over time deny a plain tanh RNN (`close_accuracy` measures it;
in the zoo's few hundred steps no cell learns it yet, so `temporal_gradients` is the
measurement that tells the cells apart).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gradsight.zoo.base import AfterStep, Setup, norm_summary, sample_markov, sparse_markov

EOS = 0
BRACKETS = 4  # kinds of sentence: open tokens 1..4, close tokens 5..8
WORDS = 1 + 2 * BRACKETS  # first word id


class RNNModel(nn.Module):
    """Container module with an encoder, a recurrent module, and a decoder."""

    def __init__(
        self,
        rnn_type: str,
        ntoken: int,
        ninp: int,
        nhid: int,
        nlayers: int,
        dropout: float = 0.5,
        tie_weights: bool = False,
    ) -> None:
        super().__init__()
        self.ntoken = ntoken
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        if rnn_type in ["LSTM", "GRU"]:
            self.rnn = getattr(nn, rnn_type)(ninp, nhid, nlayers, dropout=dropout)
        else:
            try:
                nonlinearity = {"RNN_TANH": "tanh", "RNN_RELU": "relu"}[rnn_type]
            except KeyError as e:
                raise ValueError(
                    "An invalid option for `--model` was supplied, "
                    "options are ['LSTM', 'GRU', 'RNN_TANH' or 'RNN_RELU']"
                ) from e
            self.rnn = nn.RNN(ninp, nhid, nlayers, nonlinearity=nonlinearity, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        if tie_weights:
            if nhid != ninp:
                raise ValueError("When using the tied flag, nhid must be equal to emsize")
            self.decoder.weight = self.encoder.weight

        self.init_weights()

        self.rnn_type = rnn_type
        self.nhid = nhid
        self.nlayers = nlayers

    def init_weights(self) -> None:
        initrange = 0.1
        nn.init.uniform_(self.encoder.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -initrange, initrange)

    def forward(self, input: Tensor, hidden: Tensor | tuple[Tensor, Tensor]):
        emb = self.drop(self.encoder(input))  # (T, B, ninp)
        output, hidden = self.rnn(emb, hidden)  # (T, B, nhid)
        output = self.drop(output)
        decoded = self.decoder(output)
        decoded = decoded.view(-1, self.ntoken)  # (T * B, ntoken)
        return F.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, bsz: int):
        weight = next(self.parameters())
        if self.rnn_type == "LSTM":
            return (
                weight.new_zeros(self.nlayers, bsz, self.nhid),
                weight.new_zeros(self.nlayers, bsz, self.nhid),
            )
        return weight.new_zeros(self.nlayers, bsz, self.nhid)


def repackage_hidden(h):
    """Wraps hidden states in new Tensors, to detach them from their history."""
    if isinstance(h, Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)


def batchify(data: Tensor, bsz: int) -> Tensor:
    """(N,) stream -> (N // bsz, bsz): each column a contiguous slice of the stream."""
    nbatch = data.size(0) // bsz
    data = data.narrow(0, 0, nbatch * bsz)
    return data.view(bsz, -1).t().contiguous()


def get_batch(source: Tensor, i: int, bptt: int) -> tuple[Tensor, Tensor]:
    """Inputs (seq_len, B) from row i, and the next tokens flattened (seq_len * B,)."""
    seq_len = min(bptt, len(source) - 1 - i)
    data = source[i : i + seq_len]
    target = source[i + 1 : i + 1 + seq_len].view(-1)
    return data, target


def corpus(
    chain: Tensor, sentences: int, words: tuple[int, int], generator: torch.Generator
) -> Tensor:
    """A stream of bracketed sentences whose words follow `chain` (see the module
    docstring): (tokens,)."""
    shortest, longest = words
    body = sample_markov(chain, sentences, longest, generator) + WORDS  # (S, longest)
    kinds = torch.randint(BRACKETS, (sentences,), generator=generator)
    lengths = torch.randint(shortest, longest + 1, (sentences,), generator=generator)
    parts = []
    for s in range(sentences):
        k = int(kinds[s])
        close = torch.tensor([1 + BRACKETS + k, EOS])
        parts += [torch.tensor([1 + k]), body[s, : lengths[s]], close]
    return torch.cat(parts)


def build(
    seed: int = 0,
    *,
    rnn_type: str = "LSTM",
    vocab: int = 80,
    emsize: int = 64,
    nhid: int = 64,
    nlayers: int = 2,
    dropout: float = 0.2,
    tied: bool = True,
    lr: float = 20.0,
    clip: float = 0.25,
    bptt: int = 35,
    batch_size: int = 20,
    words: tuple[int, int] = (12, 30),
) -> Setup:
    """The example's RNNModel, data pipeline and training loop on a bracket corpus.

    Args:
        seed: Seeds the corpus, the initialisation and dropout.
        rnn_type: "LSTM", "GRU", "RNN_TANH" or "RNN_RELU".
        vocab: Tokens (eos, 8 brackets, the rest words).
        emsize: Embedding size.
        nhid: Hidden units per layer.
        nlayers: Recurrent layers.
        dropout: Dropout on the embeddings, between layers and on the outputs.
        tied: Tie the decoder to the encoder (needs nhid == emsize).
        lr: The manual SGD step (the example's 20).
        clip: Gradient norm clip (the example's 0.25); 0 disables clipping.
        bptt: Sequence length of truncated backpropagation through time.
        batch_size: Columns of `batchify`.
        words: Fewest and most words between a sentence's brackets.
    """
    generator = torch.Generator().manual_seed(seed)
    chain = sparse_markov(vocab - WORDS, 3, generator)
    train_data = batchify(corpus(chain, 1500, words, generator), batch_size)  # (~1800, B)
    val_data = batchify(corpus(chain, 150, words, generator), 10)  # (~360, 10)
    torch.manual_seed(seed)
    model = RNNModel(rnn_type, vocab, emsize, nhid, nlayers, dropout, tied)
    criterion = nn.NLLLoss()
    state = {"lr": lr, "best_val_loss": None}
    clip_norms: list[Tensor] = []

    def train(steps: int, after_step: AfterStep) -> None:
        done = 0
        while done < steps:  # epochs
            model.train()
            hidden = model.init_hidden(batch_size)
            for i in range(0, train_data.size(0) - 1, bptt):
                data, targets = get_batch(train_data, i, bptt)
                # Starting each batch, we detach the hidden state from how it was previously
                # produced. If we didn't, the model would try backpropagating all the way to
                # start of the dataset.
                model.zero_grad()
                hidden = repackage_hidden(hidden)
                output, hidden = model(data, hidden)
                loss = criterion(output, targets)
                loss.backward()

                # `clip_grad_norm` helps prevent the exploding gradient problem in RNNs / LSTMs.
                if clip > 0:
                    clip_norms.append(torch.nn.utils.clip_grad_norm_(model.parameters(), clip))
                else:  # no clipping; the norm is only recorded for the probe
                    grads = [p.grad for p in model.parameters() if p.grad is not None]
                    clip_norms.append(torch.nn.utils.get_total_norm(grads))
                for p in model.parameters():
                    p.data.add_(p.grad, alpha=-state["lr"])
                after_step(loss.detach())
                done += 1
                if done == steps:
                    return
            val_loss = evaluate(model, criterion, val_data, bptt)
            if state["best_val_loss"] is None or val_loss < state["best_val_loss"]:
                state["best_val_loss"] = val_loss
            else:  # anneal the learning rate if no improvement on the validation set
                state["lr"] /= 4.0

    def probe() -> dict[str, float]:
        return _probe(model, criterion, val_data, bptt, clip_norms)

    return Setup(model, None, train, probe)


def evaluate(model: RNNModel, criterion: nn.Module, data_source: Tensor, bptt: int) -> float:
    """Mean loss over `data_source`, carrying the hidden state across batches (eval mode)."""
    model.eval()
    total_loss = 0.0
    hidden = model.init_hidden(data_source.size(1))
    with torch.no_grad():
        for i in range(0, data_source.size(0) - 1, bptt):
            data, targets = get_batch(data_source, i, bptt)
            output, hidden = model(data, hidden)
            hidden = repackage_hidden(hidden)
            total_loss += len(data) * criterion(output, targets).item()
    return total_loss / (len(data_source) - 1)


def close_accuracy(model: RNNModel, data_source: Tensor, bptt: int) -> float:
    """How often the likeliest closing bracket is the right one, where a sentence closes.

    The sentence's length is random, so when it closes is a guess; which bracket closes it
    is not: it repeats the opening one. Chance is 1/4; memory of the opening bracket, 12 to
    30 tokens back, makes it 1.
    """
    model.eval()
    hidden = model.init_hidden(data_source.size(1))
    right = total = 0
    with torch.no_grad():
        for i in range(0, data_source.size(0) - 1, bptt):
            data, targets = get_batch(data_source, i, bptt)
            output, hidden = model(data, hidden)
            closing = (targets > BRACKETS) & (targets < WORDS)
            guess = output[closing, 1 + BRACKETS : WORDS].argmax(1) + 1 + BRACKETS
            right += int((guess == targets[closing]).sum())
            total += int(closing.sum())
    return right / max(total, 1)


def temporal_gradients(model: RNNModel, data: Tensor) -> Tensor:
    """Norm of d loss(last step) / d embedding(t) for every t of `data` (T, B): (T,).

    How much the prediction at the end of the window can still learn from each earlier
    input; it decays geometrically over time when the gradient vanishes (eval mode).
    """
    seen = {}

    def keep(module: nn.Module, args: tuple, out: Tensor) -> None:
        out.retain_grad()
        seen["emb"] = out

    hook = model.encoder.register_forward_hook(keep)
    model.eval()
    try:
        model.zero_grad(set_to_none=True)
        output, _ = model(data, model.init_hidden(data.size(1)))
        last = output.view(data.size(0), data.size(1), -1)[-1]  # (B, ntoken)
        F.nll_loss(last, data[-1]).backward()  # any target: the flow back is what counts
    finally:
        hook.remove()
        model.zero_grad(set_to_none=True)
    return seen["emb"].grad.norm(dim=(1, 2))


def _probe(
    model: RNNModel,
    criterion: nn.Module,
    val: Tensor,
    bptt: int,
    clip_norms: list[Tensor],
) -> dict[str, float]:
    """Held-out loss, closing-bracket accuracy, gradient decay over time, clip norms."""
    flow = temporal_gradients(model, val[:bptt])
    result = {
        "val_loss": evaluate(model, criterion, val, bptt),
        "uniform_loss": math.log(model.ntoken),
        "close_accuracy": close_accuracy(model, val, bptt),
        "grad_time_first_over_last": float(flow[0] / flow[-1]),
        "grad_time_mid_over_last": float(flow[len(flow) // 2] / flow[-1]),
    }
    result.update(norm_summary(clip_norms))
    model.train()
    return result
