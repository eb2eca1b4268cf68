"""The doctor on a Hugging Face GPT-2 trained with AdamW at far too high a learning rate."""

import functools
import warnings

import pytest

import gradsight as gs
from gradsight.doctor.inputs import as_task
from gradsight.remedies import NotApplicable, apply_remedies

pytest.importorskip("transformers")
from gradsight.zoo import gpt2


@pytest.mark.slow
def test_the_doctor_proves_a_lower_rate_for_gpt2_at_100x_its_rate():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prescription = gs.doctor(
            functools.partial(gpt2.model, vocab=32),
            gpt2.next_token_data(vocab=32),
            optimizer="adamw",
            lr=0.3,
            steps=80,
            seeds=3,
            batch_size=32,
            max_remedies=3,
            combine=False,
            follow_up=False,
        )
    kinds = {f.kind for f in prescription.findings}
    assert "learning_rate_too_high" in kinds
    assert prescription.best in {"lower_learning_rate", "lr_range_test"}
    best = prescription.trials.loc[prescription.trials["remedy"] == prescription.best].iloc[0]
    assert best["ci_low"] > 0  # the improvement's 95% interval lies above zero
    tried = {part for name in prescription.trials["remedy"] for part in name.split("+")}
    assert not tried & {"momentum", "adaptive_optimizer", "raise_learning_rate"}


@pytest.mark.parametrize("name", ["qk_norm", "layer_norm", "batch_norm"])
def test_remedies_that_cannot_apply_to_gpt2_say_why(name):
    task = as_task(gpt2.next_token_data(vocab=32, windows=16))
    with pytest.raises(NotApplicable) as raised:
        apply_remedies([name], gpt2.model(vocab=32), {"optimizer": "adamw"}, task)
    assert len(str(raised.value)) > 40  # a sentence, not a bare refusal
