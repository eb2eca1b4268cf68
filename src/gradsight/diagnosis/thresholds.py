"""Every threshold of the diagnosis, with its reason. Calibrated on the runs of
`gradsight.doctor.scenarios` (see tests).

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
# A loss that diverges (without NaN) is put down to the gradients when the global gradient
# norm grew by two orders of magnitude from the start to the end (the same factor as a
# warning-level first/last ratio) and the steps showed no sign of a too-high rate.
EXPLODING_GROWTH_FACTOR = 1e2

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
# a median above 1e-1 means each step rewrites a tenth of the weights. Read over the last half
# of the logged steps, once the net has left a small initialisation (the word-LM example's
# LSTM at lr 20 rewrites 14% of its embedding per step in its first half, 9% after).
UPDATE_RATIO_HIGH = 1e-1
# Adaptive optimizers (Adam, RMSprop, ...) move each weight by about lr per step whatever
# the gradient (exactly lr * sign(g) at Adam's first step: Kingma & Ba 2015, sec. 2.1), and
# SGD clipped on most steps by lr * clip_norm in all, so their ratio is about lr / rms(w)
# at the start and falls as their own steps inflate the
# weights (~1 / t): it is read at its largest logged value, not as the median over the run.
# Measured against the weights after the step, |dw| / |w + dw| is 0.5 when the step is
# 0.58 times the weights' norm (dw orthogonal to w): one step threw away more than half of
# the initialisation. Healthy recipes stay below ~0.25: GPT-2's c_proj (std 0.02 /
# sqrt(2 n_layer)) at nanoGPT's lr, the zoo's GPT-2 at its default lr without warm-up (0.2),
# the scenarios' LSTM at lr 1e-2 (0.1); ten times the zoo's rate without warm-up gives 0.9.
ADAPTIVE_UPDATE_RATIO_HIGH = 0.5
# Update ratios are read only for layers that own a weight matrix (ndim >= 2: a bias alone,
# such as a decoder whose weight is tied to the embedding, has a small norm that any step
# moves by a large fraction) and whose weight norm exceeds this: a layer initialised
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
# is still above this fraction of the uniform guess log(C) when that is known, else of its
# starting value (not converged).
PLATEAU_RELATIVE_CHANGE = 0.02
PLATEAU_STILL_HIGH = 0.8
# Converged, not stuck: the global gradient norm over the last half is below this fraction
# of its largest (smoothed) value. As for saddle_point: a gradient down two orders of
# magnitude has all but vanished, and without negative curvature that is a minimum.
CONVERGED_GRAD_FRACTION = 1e-2

# -- the loss's chance level (diagnosis._loss) --------------------------------------------
# Without a task, the loss is read as a cross-entropy over `out/classes` classes only when its
# first value is within this fraction of log(classes): Gaussian logits of std s raise the
# expected cross-entropy of a fresh classifier to about log C + s^2 / 2, so a quarter of log C
# admits initial logits of std up to ~1 for C = 10 (more for larger C), while a pretrained
# model starts far below log C and an MSE loss has no reason to sit there.
CHANCE_START_TOLERANCE = 0.25
# "At chance" and "clearly beat chance": within / beyond this fraction of log C. A median
# over a tenth of the run moves by less on a flat loss, and at log C the model's predictions
# carry at most a tenth of a uniform guess's surprise less than guessing.
CHANCE_MARGIN = 0.1

# -- loss_spike (robust jumps of the loss, diagnosis._loss.spikes) ----------------------------
# Reference: median and MAD of the losses of the steps just before (Hampel identifier); 20
# steps keep the reference local to the phase of training (the loss falls fast early).
SPIKE_WINDOW = 20
# Runs shorter than this have too few steps to tell a spike from the early descent.
SPIKE_MIN_STEPS = 20
# A jump must clear both bars: 6 robust standard deviations (Gaussian batch noise crosses
# that once in ~1e9 steps, and two of three consecutive steps must do it) and a quarter of
# the loss (a jump that small is within the ups and downs of a healthy minibatch loss late
# in training, where the spread is largest relative to the level).
SPIKE_SPREADS = 6.0
SPIKE_RELATIVE = 0.25
# ... and a twentieth of the first loss: near a loss of zero the relative bar alone makes
# noise look like spikes (an MSE of 0.002 doubling), while a jump of under 5% of where the run
# started is invisible on its learning curve.
SPIKE_START_FRACTION = 0.05
# One step alone is a spike when it jumps by more than half the first loss (a digits CNN at
# 2.3 jumping to 9, a ResNet to 7.7): no batch is that much harder than its neighbours, while
# a hard batch late in training adds a few tenths at most.
SPIKE_SINGLE_START_FRACTION = 0.5
# The layer named for a spike is the one whose gradient norm jumped first within this many
# steps before it (the update that damaged the model was computed a step or a few earlier).
SPIKE_GRAD_LOOKBACK = 5

# -- learning_rate_too_high: a loss that gave back its progress ------------------------------
# The smoothed loss (rolling median over a tenth of the run) stays above its running minimum
# by more than 5% of that minimum and by more than a tenth of the progress made from the
# start to it, for at least a tenth of the run: the run lost ground it had gained and did not
# win it back while the rate stayed high (a spike that stalled, a slow rise, a stall above
# where it had got to). The scenarios' healthy runs and the zoo's GPT-2 at up to 30 times
# its default rate never give back more than 1% of their level for a single step of the
# smoothed curve; at 100 times it gives back 15% for 40% of the run.
REGRESSION_LEVEL = 0.05
REGRESSION_PROGRESS = 0.1
REGRESSION_SPAN = 0.1

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

# -- attention_collapse ----------------------------------------------------------------------
# Read over the last quarter of the logged steps (what training ended with).
ATTN_LATE = 0.25
# attn/entropy_ratio = H / log(n keys) below this: the average query's attention has the
# entropy of about one key among e.g. 32 (0.1 * log 32 = 0.35 nats, exp(0.35) = 1.4 keys).
# At initialisation it is near 1; healthy learning lowers it moderately.
ATTN_COLLAPSED_RATIO = 0.1
# Largest attention logit q.k / sqrt(d) above this: a gap of 50 between logits leaves
# e^-50 ~ 2e-22 of the weight on the rest, far beyond the ~log(n) + 10 a sharp learned head
# needs, so the softmax is saturated and its gradient p (1 - p) vanishes. Attention logit
# growth is the instability qk-layernorm removes (Dehghani et al. 2023; Wortsman et al.
# 2023); logits stay below 1 in the tiny GPT-2 of the zoo at its default rate.
ATTN_LOGIT_HIGH = 50.0

# -- residual_growth ---------------------------------------------------------------------------
# Last block's residual RMS over the first block's: with Pre-LN it grows like sqrt(depth)
# (Xiong et al. 2020), an order of magnitude only at ~100 blocks; beyond it, the growth
# compounds from block to block (no normalisation in front of the blocks).
RESID_DEPTH_GROWTH = 10.0
# A block's residual RMS over its first logged value, flagged only in an unstable run: healthy
# training from a small initialisation (std 0.02) grows it by ~10x in the zoo's GPT-2 at its
# default rate, by ~1e3 at a high rate that warm-up makes safe; three orders of magnitude
# together with spikes or attention logit growth means the steps inflate the weights.
RESID_TIME_GROWTH = 1e3

# -- remedies that fit the run (diagnosis._advice) --------------------------------------------
# The run already warms up when its logged lr starts below half its peak and rises to it.
WARMUP_START_FRACTION = 0.5
# The run already clips its gradients when at least 3 logged global gradient norms sit at
# their maximum within 1e-4 (relative): clip_grad_norm_ rescales every larger gradient to
# that norm (to float32 precision), while unclipped norms of different batches practically
# never coincide (every unclipped scenario has a single value there; the zoo's GPT-2, clipped
# at 1, from 8 to 395 of 400).
CLIP_CEILING_COUNT = 3
CLIP_CEILING_TOLERANCE = 1e-4
# Clipped on at least half the logged steps: the median step is lr * clip_norm in size, not
# lr * |g|, and the update ratio is read as for adaptive optimizers (the word-LM example's
# GRU at lr 20, clip 0.25, clipped on 98% of steps, rewrites 14% of its embedding per step
# and trains well; at lr 200 its median ratio is lower still, 5%).
CLIP_MOST_STEPS = 0.5

# -- shared ----------------------------------------------------------------------------------
# Window (fraction of the run) used to smooth the loss at its start and end.
LOSS_WINDOW = 0.1
