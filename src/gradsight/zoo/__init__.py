"""The zoo: models written the way public projects write them, healthy or with one injected
pathology, to measure whether `gs.watch` + `gs.diagnose` name what is wrong.

```python
from gradsight import zoo

result = zoo.run_scenario(zoo.SCENARIOS["gpt2/lr_too_high"])
result.findings, result.right        # [(kind, severity), ...], the verdict
report = zoo.run_zoo("word_lm/*", quick=True)
report.summary()["recall"]
```

Families (one module each, with `build(seed, **settings) -> Setup`): `gpt2` (HF GPT-2,
nanoGPT loop), `bert` (HF BERT classifier, HF fine-tuning loop), `mnist_cnn`
(pytorch/examples mnist), `resnet` (torchvision ResNet, SGD), `word_lm` (pytorch/examples
word_language_model, no optimizer object). `benchmarks/zoo.py` runs the whole zoo.
"""

from gradsight.zoo.base import Setup
from gradsight.zoo.runner import ZooReport, ZooResult, judge, run_scenario, run_zoo
from gradsight.zoo.scenarios import FAMILIES, SCENARIOS, Scenario, select

__all__ = [
    "FAMILIES",
    "SCENARIOS",
    "Scenario",
    "Setup",
    "ZooReport",
    "ZooResult",
    "judge",
    "run_scenario",
    "run_zoo",
    "select",
]
