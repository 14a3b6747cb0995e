"""Recipe loading: inheritance, overrides, and errors that name the source, the key and what is allowed."""

from pathlib import Path

import pytest
import yaml

from launch.cli import main
from rl.config import RecipeError, dump_recipe, load_recipe, recipe_from_dict

ROOT = Path(__file__).resolve().parents[2]

BASE = """\
name: base-run
model:
  path: models/nowhere
env:
  name: math
  tasks:
    - name: chain_sum
algorithm:
  group_size: 4
train:
  iterations: 10
"""


@pytest.fixture
def base(tmp_path: Path) -> Path:
    (tmp_path / "base.yaml").write_text(BASE)
    return tmp_path / "base.yaml"


def _error(path, overrides=()) -> str:
    with pytest.raises(RecipeError) as e:
        load_recipe(path, overrides)
    return str(e.value)


def test_base_inheritance_and_overrides(tmp_path, base):
    child = tmp_path / "child.yaml"
    child.write_text("base: base.yaml\nname: child\ntrain:\n  prompts_per_iteration: 4\n")
    r = load_recipe(child, ["train.iterations=3", "algorithm.loss.clip_high=0.28", "optimizer.betas=[0.9, 0.95]"])
    assert r.name == "child"
    assert r.train.iterations == 3 and r.train.prompts_per_iteration == 4  # override, then child
    assert r.algorithm.group_size == 4  # from the base
    assert r.algorithm.loss.clip_high == 0.28 and r.algorithm.loss.clip_low == 0.2
    assert r.optimizer.betas == (0.9, 0.95)
    # the resolved recipe round-trips
    again = recipe_from_dict(__import__("yaml").safe_load(dump_recipe(r)))
    assert again == r


def test_unknown_key_lists_allowed_keys_and_source(base):
    msg = _error(base, ["train.iteratons=5"])
    assert "override 'train.iteratons=5': train.iteratons: unknown key 'iteratons'" in msg
    assert "allowed keys here: iterations, prompts_per_iteration, mini_batches, epochs, micro_batch_size" in msg


def test_unknown_key_in_file_names_the_file(tmp_path, base):
    child = tmp_path / "child.yaml"
    child.write_text("base: base.yaml\noptimiser:\n  lr: 0.1\n")
    msg = _error(child)
    assert f"{child.resolve()}: optimiser: unknown key 'optimiser'" in msg
    assert "optimizer" in msg  # the allowed top-level keys are listed


def test_error_in_base_names_the_base_file(tmp_path):
    (tmp_path / "base.yaml").write_text(BASE.replace("iterations: 10", "iterations: ten"))
    (tmp_path / "child.yaml").write_text("base: base.yaml\nname: child\n")
    msg = _error(tmp_path / "child.yaml")
    assert f"{(tmp_path / 'base.yaml').resolve()}: train.iterations: Input should be a valid integer" in msg
    assert "(got 'ten')" in msg


def test_wrong_type_and_out_of_range(base):
    assert "train.iterations: Input should be a valid integer" in _error(base, ["train.iterations=abc"])
    assert "optimizer.lr: Input should be greater than 0" in _error(base, ["optimizer.lr=-1"])
    assert "algorithm.loss.clip_low: Input should be less than 1" in _error(base, ["algorithm.loss.clip_low=1.5"])
    assert "engine.temperature: Input should be greater than 0" in _error(base, ["engine.temperature=0"])


def test_unknown_component_names_list_the_allowed_ones(base):
    msg = _error(base, ["algorithm.loss.name=ppo_clipp"])
    assert "algorithm.loss: unknown name 'ppo_clipp'; allowed: 'ppo_clip'" in msg
    msg = _error(base, ["algorithm.aggregation.name=mean"])
    assert "algorithm.aggregation.name: Input should be 'token_mean', 'seq_mean_token_mean'" in msg
    msg = _error(base, ["algorithm.loss.clip_lo=0.1"])  # a loss's own config is checked too
    assert "algorithm.loss.clip_lo: unknown key 'clip_lo'; allowed keys here: name, clip_low, clip_high, dual_clip" in msg


def test_group_size_one_with_grpo(base):
    msg = _error(base, ["algorithm.group_size=1"])
    assert "override 'algorithm.group_size=1': algorithm.group_size: group_size must be at least 2 with the 'grpo' advantage" in msg


def test_group_size_one_with_reinforce_pp_group_mean_is_rejected(base):
    # every completion would be its own group's mean: all advantages 0, a run that trains nothing
    msg = _error(base, ["algorithm.advantage={name: reinforce_pp}", "algorithm.group_size=1"])
    assert "algorithm.group_size: group_size must be at least 2 with the 'reinforce_pp' advantage with baseline 'group_mean'" in msg
    assert "algorithm.advantage.baseline: none" in msg
    # switching the baseline on over a group_size 1 recipe names the baseline's setter
    msg = _error(base, ["algorithm.group_size=1", "algorithm.advantage={name: reinforce_pp, baseline: none}",
                        "algorithm.advantage.baseline=group_mean"])
    assert "override 'algorithm.advantage.baseline=group_mean': algorithm.advantage: group_size must be at least 2" in msg
    r = load_recipe(base, ["algorithm.advantage={name: reinforce_pp, baseline: none}", "algorithm.group_size=1"])
    assert r.algorithm.group_size == 1 and r.algorithm.advantage.baseline == "none"


def test_errors_name_the_file_that_set_the_offending_value(tmp_path, base):
    """A model validator's error sits at the model (`algorithm`), which the base set; the error names
    the key and the recipe or override that set the offending value (issue 17, item 6)."""
    child = tmp_path / "child.yaml"
    child.write_text("base: base.yaml\nname: child\nalgorithm:\n  group_size: 1\n")
    msg = _error(child)
    assert f"{child.resolve()}: algorithm.group_size: group_size must be at least 2" in msg
    assert str(base.resolve()) not in msg
    # a recipe that gives no env.tasks (and no dataset)
    child.write_text("base: base.yaml\nname: child\nenv:\n  tasks: []\n")
    msg = _error(child)
    assert f"{child.resolve()}: env.tasks: give exactly one source of problems" in msg and "got neither" in msg
    # the value the base set is still the base's error
    (tmp_path / "b2.yaml").write_text(BASE.replace("group_size: 4", "group_size: 1"))
    (tmp_path / "c2.yaml").write_text("base: b2.yaml\nname: child\ntrain: {iterations: 3}\n")
    assert f"{(tmp_path / 'b2.yaml').resolve()}: algorithm.group_size: group_size" in _error(tmp_path / "c2.yaml")
    # recipe-level combinations: the override that broke it
    msg = _error(base, ["engine.max_new_tokens=64", "algorithm.length.overlong_buffer=64"])
    assert "override 'algorithm.length.overlong_buffer=64': algorithm.length.overlong_buffer: algorithm.length.overlong_buffer (64)" in msg
    msg = _error(base, ["train.prompts_per_iteration=6", "train.mini_batches=4"])
    assert "override 'train.mini_batches=4': train.mini_batches: mini_batches (4) must divide" in msg


def test_committed_recipes_report_the_child_not_grpo_yaml(tmp_path):
    child = tmp_path / "mine.yaml"
    child.write_text(f"base: {ROOT / 'recipes' / 'grpo.yaml'}\nalgorithm:\n  group_size: 1\n")
    msg = _error(child)
    assert f"{child.resolve()}: algorithm.group_size" in msg and "grpo.yaml:" not in msg


def test_minibatches_must_divide_prompts(base):
    msg = _error(base, ["train.prompts_per_iteration=6", "train.mini_batches=4"])
    assert "mini_batches (4) must divide prompts_per_iteration (6)" in msg


def test_missing_required_key_and_bad_files(tmp_path, base):
    (tmp_path / "nomodel.yaml").write_text("name: x\nenv: {name: math, tasks: [{name: chain_sum}]}\n")
    assert "model: required key is missing" in _error(tmp_path / "nomodel.yaml")
    assert "recipe file not found" in _error(tmp_path / "absent.yaml")
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")
    assert "not valid YAML" in _error(tmp_path / "bad.yaml")
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    assert "'base' inheritance loops" in _error(tmp_path / "a.yaml")
    assert "expected key.sub=value" in _error(base, ["train.iterations"])


def test_cli_reports_recipe_errors_before_loading_anything(base, capsys):
    # model.path does not exist: had anything loaded, this would be a FileNotFoundError instead
    assert main(["train", str(base), "algorithm.loss.name=nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown name 'nope'" in err and "allowed: 'ppo_clip'" in err


RECIPES = sorted(p for p in (ROOT / "recipes").rglob("*.yaml") if "grids" not in p.parts)  # grids are not recipes


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(ROOT / "recipes")))
def test_every_committed_recipe_is_valid(path):
    load_recipe(path)


def test_environment_errors_name_the_key_as_written(base):
    msg = _error(base, ["env.tasks=[{name: chain_sum, config: {max_digitz: 2}}]"])
    assert "env.tasks.0" in msg and "env.math" not in msg and "max_digitz" in msg
    msg = _error(base, ["env.name=chess"])
    assert "env: unknown name 'chess'; allowed: 'math'" in msg


def test_component_without_name(tmp_path, base):
    r = load_recipe(base, ["algorithm.loss={clip_high: 0.3}"])
    assert r.algorithm.loss.name == "ppo_clip" and r.algorithm.loss.clip_high == 0.3
    (tmp_path / "noname.yaml").write_text("name: x\nmodel: {path: m}\nenv: {tasks: [{name: chain_sum}]}\n")
    assert "env: missing 'name' (which one?); allowed: 'math'" in _error(tmp_path / "noname.yaml")


def test_component_unions_list_the_allowed_names(base):
    msg = _error(base, ["algorithm.loss.name=kl-cov"])
    assert "allowed: 'ppo_clip', 'dapo', 'reinforce', 'gspo', 'cispo', 'clip_cov', 'kl_cov', 'sapo'" in msg
    msg = _error(base, ["algorithm.advantage.name=vtrace"])
    assert "allowed: 'grpo', 'rloo', 'reinforce_pp', 'gae'" in msg
    msg = _error(base, ["algorithm.loss={name: cispo, epsilon_high: 5}"])
    assert "algorithm.loss.epsilon_high: unknown key 'epsilon_high'; allowed keys here: name, cap, floor" in msg
    r = load_recipe(base, ["algorithm.loss={name: kl_cov}", "train.mini_batches=2", "train.prompts_per_iteration=4"])
    assert r.algorithm.loss.ratio == 2e-3 and r.algorithm.loss.coef == 1.0 and r.algorithm.loss.scope == "global"


def test_gae_and_critic_go_together(base):
    assert "the 'gae' advantage needs a critic" in _error(base, ["algorithm.advantage.name=gae"])
    assert "critic is set" in _error(base, ["algorithm.critic={model: value_head}"])
    r = load_recipe(base, ["algorithm.advantage.name=gae", "algorithm.critic={model: value_head, lr: 1.0e-5}"])
    assert r.algorithm.critic.model == "value_head" and r.algorithm.advantage.lam == 0.95


def test_overlong_buffer_must_fit_the_budget(base):
    msg = _error(base, ["engine.max_new_tokens=64", "algorithm.length.overlong_buffer=64"])
    assert "overlong_buffer (64) must be below engine.max_new_tokens (64)" in msg


def test_recipe_warnings_for_kl_cov_on_policy_and_gspo_token_mean(base):
    from rl.config import recipe_warnings

    on_policy = load_recipe(base, ["algorithm.loss.name=kl_cov"])
    assert any("every importance ratio is 1" in w for w in recipe_warnings(on_policy))
    off_policy = load_recipe(base, ["algorithm.loss.name=kl_cov", "train.epochs=2"])
    assert not recipe_warnings(off_policy)
    assert any("GSPO's objective is a mean over sequences" in w for w in recipe_warnings(load_recipe(base, ["algorithm.loss.name=gspo"])))
    assert any("SAPO's objective is a mean over sequences" in w for w in recipe_warnings(load_recipe(base, ["algorithm.loss.name=sapo"])))
    sapo = load_recipe(ROOT / "recipes" / "tiny" / "sapo.yaml")
    assert (sapo.algorithm.loss.name, sapo.algorithm.loss.tau_pos, sapo.algorithm.loss.tau_neg) == ("sapo", 1.0, 1.05)
    assert not recipe_warnings(sapo)


def test_a_component_of_another_name_replaces_the_base_component(tmp_path, base):
    (tmp_path / "ppo.yaml").write_text("base: base.yaml\nalgorithm:\n  loss: {name: ppo_clip, clip_high: 0.28}\n")
    (tmp_path / "child.yaml").write_text("base: ppo.yaml\nalgorithm:\n  loss: {name: cispo}\n")
    assert load_recipe(tmp_path / "child.yaml").algorithm.loss.model_dump() == {"name": "cispo", "cap": 5.0, "floor": None}
    # the same name still merges key by key, from files and from the command line
    r = load_recipe(tmp_path / "ppo.yaml", ["algorithm.loss.clip_low=0.1"])
    assert (r.algorithm.loss.clip_low, r.algorithm.loss.clip_high) == (0.1, 0.28)
    assert load_recipe(tmp_path / "ppo.yaml", ["algorithm.loss.name=gspo"]).algorithm.loss.clip_high == 4e-4


def test_another_engine_keeps_the_sampling_settings():
    """engine.name=hf over a vllm recipe changes the engine, not its max_new_tokens or temperature
    (the engine is not a component whose options belong to its name)."""
    r = load_recipe(ROOT / "recipes" / "smollm2" / "grpo.yaml", ["engine.name=hf"])
    assert (r.engine.name, r.engine.max_new_tokens, r.engine.temperature) == ("hf", 48, 1.0)
    assert r.engine.vllm.max_model_len == 512  # kept too; unused by hf


BASELINES = ["grpo", "dr_grpo", "dapo", "gspo", "cispo", "clip_cov", "kl_cov", "ppo", "scalerl", "sapo"]
# what a tiny variant may change from its real recipe (each says so in its header)
TINY_CHANGES = {"group_size", "length", "dynamic_sampling"}


@pytest.mark.parametrize("name", BASELINES)
def test_tiny_variants_run_their_baselines_algorithm(name):
    real, tiny = load_recipe(ROOT / "recipes" / f"{name}.yaml"), load_recipe(ROOT / "recipes" / "tiny" / f"{name}.yaml")
    assert tiny.model.path == "models/tiny-math" and tiny.engine.max_new_tokens == 8
    for key in type(real.algorithm).model_fields:
        if key not in TINY_CHANGES:
            if key == "critic" and real.algorithm.critic is not None:  # the tiny critic learns faster
                assert tiny.algorithm.critic.model_copy(update={"lr": real.algorithm.critic.lr}) == real.algorithm.critic
                continue
            assert getattr(tiny.algorithm, key) == getattr(real.algorithm, key), key
    assert (tiny.algorithm.dynamic_sampling is None) == (real.algorithm.dynamic_sampling is None)
    assert (tiny.algorithm.length.overlong_buffer is None) == (real.algorithm.length.overlong_buffer is None)
    assert (tiny.algorithm.length.thinking_budget is None) == (real.algorithm.length.thinking_budget is None)
    assert (tiny.train.epochs * tiny.train.mini_batches > 1) == (real.train.epochs * real.train.mini_batches > 1)


def test_async_combinations_fail_with_what_is_needed(base):
    assert "needs engine.name vllm or vllm-server" in _error(base, ["async.max_off_policy_steps=1"])
    assert "needs algorithm.tis" in _error(base, ["engine.name=vllm", "async.max_off_policy_steps=1"])
    msg = _error(base, ["engine.name=vllm", "async.max_off_policy_steps=1", "algorithm.tis.cap=2", "train.mini_batches=2",
                        "train.prompts_per_iteration=4"])
    assert "async.max_off_policy_steps (1) must be at least train.mini_batches * train.epochs (2)" in msg
    assert "allowed keys here: max_off_policy_steps, queue_size" in _error(base, ["async.k=1"])
    assert "Input should be 'hf', 'vllm' or 'vllm-server'" in _error(base, ["engine.name=sglang"])
    r = load_recipe(base, ["engine.name=vllm", "async.max_off_policy_steps=1", "algorithm.tis.cap=2"])
    assert r.async_.max_off_policy_steps == 1
    assert yaml.safe_load(dump_recipe(r))["async"]["max_off_policy_steps"] == 1  # written back under `async`


def test_eval_prior_must_be_a_prior_file(base, tmp_path):
    """eval.prior is checked when the recipe loads, before any model: the file, and that it is a prior."""
    msg = _error(base, [f"eval.prior={tmp_path / 'none.json'}"])
    assert "eval.prior: prior file" in msg and "does not exist; build one with `asymptote prior build" in msg
    (tmp_path / "other.json").write_text('{"schema": "asymptote.analysis/1"}')
    msg = _error(base, [f"eval.prior={tmp_path / 'other.json'}"])
    assert "is not an Asymptote prior (schema 'asymptote.analysis/1')" in msg
    (tmp_path / "p.json").write_text('{"schema": "asymptote.prior/1"}')
    assert load_recipe(base, [f"eval.prior={tmp_path / 'p.json'}"]).eval.prior == str(tmp_path / "p.json")
