"""LoRA (model.lora): merged weights equal adapter + base, only the adapters train, checkpoints hold
the adapter, resume is exact, and the engines receive the merged weights."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from rl.config import LoraConfig, RecipeError
from rl.logger import read_jsonl
from rl.lora import ADAPTER_DIR, apply_lora
from rl.models import load_model
from rl.trainer import Trainer, train
from rl.weights import iter_full_params, merged_state_dict
from tests.rl.test_trainer import comparable, crash_during, make_recipe

LORA = {"r": 4, "alpha": 8.0}


def _randomise_adapters(model, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:  # peft starts B at 0 (an adapter that changes nothing)
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)


def test_merged_weights_give_the_logits_of_adapter_plus_base(tiny_model_dir):
    peft_model = apply_lora(load_model(tiny_model_dir), LoraConfig(**LORA))
    _randomise_adapters(peft_model)
    ids = torch.tensor([[3, 7, 11, 20, 5, 9]])
    with torch.no_grad():
        adapted = peft_model(input_ids=ids).logits
        base = load_model(tiny_model_dir)
        assert not torch.allclose(base(input_ids=ids).logits, adapted, atol=1e-4)  # the adapters do something
        merged = merged_state_dict(peft_model)
        # the base model's own names, every one of its parameters, nothing of the adapters
        assert set(merged) == {n for n, _ in base.named_parameters()}
        base.load_state_dict(merged, strict=False)
        torch.testing.assert_close(base(input_ids=ids).logits, adapted, rtol=0, atol=2e-5)
    # merging is out of place: the peft model still holds the unmerged base weights and adds the adapters
    fresh = load_model(tiny_model_dir)
    for (name, p), (_, q) in zip(iter_full_params(fresh), ((n, t) for n, t in peft_model.named_parameters()
                                                          if "lora_" not in n)):
        assert torch.equal(p, q), name


def test_unknown_target_modules_name_the_models_layers(tiny_model_dir):
    with pytest.raises(ValueError, match=r"target_modules \['attn_out'\].*q_proj"):
        apply_lora(load_model(tiny_model_dir), LoraConfig(r=2, target_modules=["attn_out"]))


def test_lora_is_refused_with_sharded_parameters(tmp_path, tiny_model_dir):
    with pytest.raises(RecipeError, match="model.lora with distributed.strategy zero3 is not supported"):
        make_recipe(tmp_path, tiny_model_dir, model__lora=LORA, distributed={"strategy": "zero3"})


def test_only_the_adapters_train_and_final_model_is_merged(tmp_path, tiny_model_dir):
    recipe = make_recipe(tmp_path, tiny_model_dir, model__lora=LORA, train__iterations=3, optimizer__lr=1e-2)
    trainer = Trainer(recipe)
    trainable = {n for n, p in trainer.policy.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    before = {n: p.detach().clone() for n, p in trainer.policy.named_parameters()}
    trainer.fit()
    trainer.close()
    after = dict(trainer.policy.named_parameters())
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert changed and changed <= trainable
    lines = read_jsonl(recipe.run_dir / "metrics.jsonl")
    assert all(m["train/mismatch_kl"] < 1e-6 for m in lines if "train/mismatch_kl" in m)

    final = recipe.run_dir / "final_model"
    ids = torch.tensor([[3, 7, 11, 20, 5, 9]])
    with torch.no_grad():
        trained = trainer.policy(input_ids=ids).logits
        merged = AutoModelForCausalLM.from_pretrained(final)  # no peft needed
        torch.testing.assert_close(merged(input_ids=ids).logits, trained, rtol=0, atol=2e-5)
        from peft import PeftModel

        adapter = PeftModel.from_pretrained(load_model(tiny_model_dir), final / ADAPTER_DIR)
        torch.testing.assert_close(adapter(input_ids=ids).logits, trained, rtol=0, atol=1e-6)
    ckpt = recipe.run_dir / "checkpoints" / "latest" / ADAPTER_DIR
    assert (ckpt / "adapter_config.json").is_file() and (ckpt / "adapter_model.safetensors").is_file()


def test_resume_with_lora_matches_an_uninterrupted_run(tmp_path, tiny_model_dir, monkeypatch):
    reference = comparable(read_jsonl(train(make_recipe(tmp_path / "a", tiny_model_dir, model__lora=LORA))
                                      / "metrics.jsonl"))
    broken = make_recipe(tmp_path / "b", tiny_model_dir, model__lora=LORA)
    crash_during(broken, monkeypatch)
    assert comparable(read_jsonl(train(broken, resume=True) / "metrics.jsonl")) == reference


@pytest.mark.slow
def test_the_vllm_engine_samples_from_the_merged_weights(tmp_path, tiny_model_dir):
    pytest.importorskip("vllm", reason="the vllm engine needs vLLM")
    recipe = make_recipe(tmp_path, tiny_model_dir, model__lora=LORA, train__iterations=3, optimizer__lr=1e-2,
                         engine={"name": "vllm", "max_new_tokens": 4,
                                 "vllm": {"max_num_seqs": 32, "max_model_len": 128}})
    lines = read_jsonl(train(recipe) / "metrics.jsonl")
    trained = [m for m in lines if "train/mismatch_kl" in m]
    assert len(trained) == 3
    # after each step the engine holds W + BA: its log-probs are the trainer's (the adapters moved them)
    assert all(m["train/mismatch_kl"] < 1e-6 for m in trained), [m["train/mismatch_kl"] for m in trained]
