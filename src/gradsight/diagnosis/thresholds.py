"""Every threshold of the diagnosis, with its reason. Calibrated on `scenarios` (see tests).

Ratios of gradient norms compare the first weight layer (nearest the input) with the last
(nearest the loss). In a healthy net they stay within an order or two of magnitude; the
chain rule through n sigmoid layers multiplies by sigmoid' <= 1/4 each time, so a 12-layer
sigmoid MLP loses ~4^11 = 4e6 (Hochreiter 1991; Glorot & Bengio 2010, fig. 7).
"""

# -- vanishing_gradients ---------------------------------------------------------------------
# First/last layer gradient-norm ratio (median over logged steps). He-initialised ReLU MLPs
# and CNNs of the scenarios stay above 1e-1; 10+ layer sigmoid nets fall below 1e-4.
VANISHING_RATIO_WARNING = 1e-2
VANISHING_RATIO_CRITICAL = 1e-4
# A layer "gets almost nothing" when its gradient norm is below this fraction of the last
# layer's (used for the count in the summary).
VANISHING_LAYER_FRACTION = 1e-4
# Over time (RNNs): dL/dh_0 against dL/dh_T (median over the last half of logged steps). A
# trained LSTM keeps it above 1e-2 on the adding problem; a tanh RNN falls far below 1e-4
# (Bengio et al. 1994; Pascanu et al. 2013).
TEMPORAL_RATIO_WARNING = 1e-3
TEMPORAL_RATIO_CRITICAL = 1e-6

# -- exploding_gradients ---------------------------------------------------------------------
# First/last ratio above this means the gradient grows on its way to the input (weights too
# large: N(0, 1) weights multiply the signal by ~sqrt(fan_in / 2) per ReLU layer).
EXPLODING_RATIO_WARNING = 1e2
EXPLODING_RATIO_CRITICAL = 1e4
# A spike: a global gradient norm this many times the run's median.
EXPLODING_SPIKE_FACTOR = 1e3

# -- saturated_activations --------------------------------------------------------------------
# Fraction of a sigmoid/tanh layer's units in the flat region (derivative < 5% of its max,
# telemetry.stats.SATURATION_DERIVATIVE_FRACTION), median over logged steps. LeCun et al.
# 1998 advise keeping units in the near-linear range; half the layer flat is a warning.
SATURATED_WARNING = 0.5
SATURATED_CRITICAL = 0.9

# -- dead_units -------------------------------------------------------------------------------
# Fraction of ReLU units off for the whole batch, median over the last half of logged steps.
# Healthy He-initialised nets of the scenarios stay below 0.2.
DEAD_WARNING = 0.5
DEAD_CRITICAL = 0.9

# -- non_zero_centered -----------------------------------------------------------------------
# |mean| / std of a layer's outputs: sigmoid outputs (mean ~0.5, small spread) are far from
# zero-centred, so every weight of the next layer's unit gets a gradient of the same sign and
# descent zig-zags (LeCun et al. 1998, sec. 4.3). ReLU layers (|mean|/std ~ 0.7-1.5) are
# non-zero-centred by design and are not flagged.
OFFCENTER_ACTIVATION_WARNING = 3.0
# Inputs: |mean| / std of the raw training inputs (all features together); a standardised
# task has 0.
OFFCENTER_INPUT_WARNING = 0.5

# -- learning_rate_too_high ------------------------------------------------------------------
# Loss at the end above this multiple of the loss at the start: training made things worse.
LOSS_RISE_FACTOR = 1.5
# The classic rule of thumb: update/weight ratios near 1e-3 are healthy (Karpathy, CS231n);
# a median above 1e-1 means each step rewrites a tenth of the weights.
UPDATE_RATIO_HIGH = 1e-1
# Update ratios are read only for layers whose weight norm exceeds this: a layer initialised
# near zero has a huge |dw| / |w| whatever the learning rate, while any layer of a few dozen
# weights at the usual 1/sqrt(fan_in) scale has a norm of 1 or more.
RATIO_MIN_WEIGHT_NORM = 0.1
# Gradient descent on a quadratic is stable only while lr * lambda_max < 2 (the step must not
# overshoot the sharpest direction by more than the distance to its minimum; Cohen et al.
# 2021 show training settles at this "edge of stability").
STABILITY_LIMIT = 2.0

# -- learning_rate_too_low --------------------------------------------------------------------
# Every layer's median update ratio below this, with the loss barely moving.
UPDATE_RATIO_LOW = 1e-5
# "Barely moving": relative decrease of the smoothed loss over the run below this.
FLAT_LOSS_RELATIVE = 0.05

# -- loss_plateau ----------------------------------------------------------------------------
# Over the last half of the run the smoothed loss moved less than this (relative), while it
# is still above this fraction of its starting value (not converged).
PLATEAU_RELATIVE_CHANGE = 0.02
PLATEAU_STILL_HIGH = 0.8

# -- saddle_point ----------------------------------------------------------------------------
# Small gradient (global norm below this fraction of its largest value in the run) with
# clearly negative curvature: lambda_min < -this fraction of lambda_max (Dauphin et al. 2014).
SADDLE_GRAD_FRACTION = 1e-2
SADDLE_NEGATIVE_CURVATURE = 1e-2

# -- covariate_shift -------------------------------------------------------------------------
# act/drift: shift of the units' means between logged steps in units of the layer's spread
# (Ioffe & Szegedy 2015). Median over the last half of logged steps; info only, the
# remedy (batch norm) is cheap to try.
DRIFT_INFO = 0.5

# -- shared ----------------------------------------------------------------------------------
# Window (fraction of the run) used to smooth the loss at its start and end.
LOSS_WINDOW = 0.1
