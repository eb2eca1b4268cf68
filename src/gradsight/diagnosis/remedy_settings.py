"""The values the training remedies set (`gradsight.remedies.training` applies them; the
diagnosis quotes them in its advice, "AdamW at lr 3e-2: try 3e-3"). Common defaults, not
tuned per problem."""

CLIP_NORM = 1.0  # Pascanu et al. 2013 clip at a norm of the order of the usual gradient
WEIGHT_DECAY = 5e-4  # the classic ImageNet/CIFAR value (Krizhevsky et al. 2012)
LR_FACTOR = 10.0  # lower/raise the learning rate by one decade
MOMENTUM = 0.9  # Sutskever et al. 2013
ADAPTIVE = ("adam", 1e-3)  # Kingma & Ba 2015, with their default step size
# Linear warm-up over the first tenth of the steps: the fraction of the usual recipes (BERT's
# 10k of 1M steps is 1%; nanoGPT and the Hugging Face examples use a few percent to 10%), at
# the long end because the runs diagnosed here are short.
WARMUP_FRACTION = 0.1
