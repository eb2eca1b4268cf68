"""Recurrent nets unrolled step by step, so the gradient w.r.t. every hidden state h_t exists."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from gradsight.checks import check_choice, check_int, check_options_dict
from gradsight.errors import InputError
from gradsight.models._validate import check_layer_choices
from gradsight.models.activations import make_activation
from gradsight.models.init import initialize, seeded

CELLS = ("rnn", "lstm", "gru")


class HiddenStateTap(nn.Identity):
    """An identity the top layer's hidden state h_t goes through once per time step.

    A forward hook on it sees h_t for t = 1..T (T calls per forward), and a backward hook the
    gradient dL/dh_t, without changing what the model computes.
    """


class ElmanCell(nn.Module):
    """A vanilla recurrent cell, h_t = act(W_ih x_t + b + W_hh h_{t-1}) (Elman 1990).

    Attributes:
        ih: Linear map of the input, with the bias b.
        hh: Linear map of the previous hidden state, without bias.
        act: The activation module (called once per step, so hooks see every step).
    """

    def __init__(self, input_size: int, hidden_size: int, activation: nn.Module) -> None:
        super().__init__()
        self.ih = nn.Linear(input_size, hidden_size)
        self.hh = nn.Linear(hidden_size, hidden_size, bias=False)
        self.act = activation

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        return self.act(self.ih(x) + self.hh(h))  # (B, H)


class RecurrentNet(nn.Module):
    """Stacked recurrent cells unrolled over time in Python, then a Linear head.

    Unlike a fused `nn.RNN`, every step is a separate autograd node, so each hidden state is
    a tensor of the graph and dL/dh_t can be measured (Bengio et al. 1994; Pascanu et al.
    2013). The layers are named cell1..cellL, hidden_tap and head.

    Attributes:
        cell: "rnn", "lstm" or "gru".
        input_size: Features per time step.
        hidden_size: Units per layer.
        num_layers: Number of stacked cells.
        sequence_output: Whether the head is applied at every step or only the last.
        hidden_tap: The `HiddenStateTap` the top layer's h_t passes through.
        head: Linear map from the hidden state to the output.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int,
        cell: str = "rnn",
        activation: str = "tanh",
        num_layers: int = 1,
        sequence_output: bool = False,
        activation_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.cell = cell
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.sequence_output = sequence_output
        for i in range(1, num_layers + 1):
            size = input_size if i == 1 else hidden_size
            if cell == "rnn":
                act = make_activation(activation, **(activation_options or {}))
                module: nn.Module = ElmanCell(size, hidden_size, act)
            else:
                module = (nn.LSTMCell if cell == "lstm" else nn.GRUCell)(size, hidden_size)
            self.add_module(f"cell{i}", module)
        self.hidden_tap = HiddenStateTap()
        self.head = nn.Linear(hidden_size, output_size)

    @property
    def cells(self) -> list[nn.Module]:
        """The cells, bottom layer first."""
        return [getattr(self, f"cell{i}") for i in range(1, self.num_layers + 1)]

    def forward(
        self, x: Tensor, return_hidden: bool = False
    ) -> Tensor | tuple[Tensor, list[Tensor]]:
        """Runs the sequence through the cells from a zero state.

        Args:
            x: Inputs (B, T, input_size); (B, T) is accepted when input_size is 1.
            return_hidden: Whether to also return the top layer's hidden states.

        Returns:
            The output, (B, output_size) from h_T, or (B, T, output_size) with
            `sequence_output`; with `return_hidden`, `(output, hiddens)` where hiddens are
            the T tensors h_t (B, hidden_size) of the graph, so `torch.autograd.grad(loss,
            hiddens)` gives the total derivative dL/dh_t through the recurrence.
        """
        if x.dim() == 2 and self.input_size == 1:
            x = x.unsqueeze(-1)  # (B, T, 1)
        if x.dim() != 3 or x.shape[-1] != self.input_size or x.shape[1] == 0:
            raise InputError(
                f"expected inputs (B, T, {self.input_size}) with T >= 1, got {tuple(x.shape)}"
            )
        zeros = x.new_zeros(x.shape[0], self.hidden_size)  # (B, H)
        states: list[Any] = [(zeros, zeros) if self.cell == "lstm" else zeros] * self.num_layers
        cells = self.cells
        hiddens: list[Tensor] = []
        for t in range(x.shape[1]):
            inp = x[:, t]  # (B, input_size)
            for i, cell in enumerate(cells):
                states[i] = cell(inp, states[i])
                inp = states[i][0] if self.cell == "lstm" else states[i]  # (B, H)
            h = self.hidden_tap(inp)  # (B, H)
            # The tapped tensor is the one carried on, so a hook's view of h_t is the real one.
            states[-1] = (h, states[-1][1]) if self.cell == "lstm" else h
            hiddens.append(h)
        if self.sequence_output:
            out = self.head(torch.stack(hiddens, dim=1))  # (B, T, output_size)
        else:
            out = self.head(hiddens[-1])  # (B, output_size)
        return (out, hiddens) if return_hidden else out

    def extra_repr(self) -> str:
        return f"cell={self.cell!r}, sequence_output={self.sequence_output}"


def rnn(
    input_size: int,
    hidden_size: int,
    output_size: int,
    cell: str = "rnn",
    activation: str = "tanh",
    num_layers: int = 1,
    sequence_output: bool = False,
    init: str = "default",
    bias_init: float = 0.0,
    activation_options: dict[str, Any] | None = None,
    init_options: dict[str, Any] | None = None,
    seed: int | None = None,
) -> RecurrentNet:
    """A recurrent net: vanilla (Elman), LSTM or GRU cells, unrolled, then a Linear head.

    - "rnn": h_t = act(W_ih x_t + b + W_hh h_{t-1}) with any activation from `ACTIVATIONS`;
      its gradients vanish or explode over time as products of W_hh^T diag(act') (Bengio
      et al. 1994).
    - "lstm": `nn.LSTMCell`, whose additive cell state carries gradients over long spans
      (Hochreiter & Schmidhuber 1997).
    - "gru": `nn.GRUCell` (Cho et al. 2014).

    Args:
        input_size: Features per time step.
        hidden_size: Units per layer.
        output_size: Size of the output.
        cell: "rnn", "lstm" or "gru".
        activation: Activation of the "rnn" cell; LSTM and GRU cells take only "tanh".
        num_layers: Number of stacked cells.
        sequence_output: Whether to return an output at every step, (B, T, output_size).
        init: A name from `INITS`, applied with `initialize` once the model is built.
        bias_init: Value of every bias (schemes other than "default").
        activation_options: Options of the "rnn" cell's activation.
        init_options: Options of the init scheme, e.g. {"gain": 1.0} for "orthogonal".
        seed: If given, weights come from `torch.manual_seed(seed)`; the global RNG is kept.

    Returns:
        The `RecurrentNet`.

    Raises:
        InputError: If an argument is out of range or a name is unknown.
    """
    check_int("input_size", input_size, 1)
    check_int("hidden_size", hidden_size, 1)
    check_int("output_size", output_size, 1)
    check_int("num_layers", num_layers, 1)
    check_choice("cell", cell, CELLS)
    if not isinstance(sequence_output, bool):
        raise InputError(f"sequence_output must be a bool, got {sequence_output!r}")
    act_options = check_options_dict("activation_options", activation_options)
    init_opts = check_options_dict("init_options", init_options)
    check_layer_choices(activation, act_options, init, init_opts)
    if cell != "rnn" and (activation != "tanh" or act_options):
        raise InputError(f"cell {cell!r} uses tanh; activation {activation!r} needs cell 'rnn'")

    with seeded(seed):
        model = RecurrentNet(
            input_size,
            hidden_size,
            output_size,
            cell=cell,
            activation=activation,
            num_layers=num_layers,
            sequence_output=sequence_output,
            activation_options=act_options,
        )
        initialize(model, init, bias_init=bias_init, **init_opts)
    return model
