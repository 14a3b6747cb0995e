"""rl/threads.py: the thread count the trainer gives torch, and where the choice came from."""

import pytest

from rl.threads import auto_threads, choose_threads


@pytest.mark.parametrize(
    "cores, processes, expected",
    [(2, 1, 1), (1, 1, 1), (16, 1, 8), (16, 8, 1), (64, 4, 8), (3, 1, 1), (2, 4, 1)],
)
def test_auto_leaves_half_the_cores_shared_by_the_nodes_processes(cores, processes, expected):
    assert auto_threads(cores, processes) == expected


def test_auto_reads_torchruns_local_world_size(monkeypatch):
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert auto_threads(cores=32) == 4
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    assert auto_threads(cores=32) == 16


def test_the_recipe_beats_the_environment_which_beats_auto():
    assert choose_threads(3, {"OMP_NUM_THREADS": "1"}) == (3, "resources.cpu_threads")
    assert choose_threads(None, {"OMP_NUM_THREADS": "2"}) == (2, "OMP_NUM_THREADS")
    threads, why = choose_threads(None, {})
    assert threads == auto_threads() and why.startswith("auto")
    assert choose_threads(None, {"OMP_NUM_THREADS": " "})[1].startswith("auto")  # empty counts as unset


def test_a_malformed_omp_num_threads_is_named():
    with pytest.raises(ValueError, match="OMP_NUM_THREADS='four' is not a whole number"):
        choose_threads(None, {"OMP_NUM_THREADS": "four"})


def test_the_recipe_field_is_validated():
    from rl.config import ResourcesConfig

    assert ResourcesConfig(cpu_threads=2).cpu_threads == 2
    with pytest.raises(ValueError, match="cpu_threads"):
        ResourcesConfig(cpu_threads=0)


def test_the_trainer_sets_torchs_pool(tiny_model_dir, tmp_path):
    import torch

    from rl.config import load_recipe
    from rl.trainer import Trainer
    from launch.demo import DEMO_RECIPE

    before = torch.get_num_threads()
    try:
        recipe = load_recipe(DEMO_RECIPE, [f"model.path={tiny_model_dir}", f"logging.runs_dir={tmp_path}",
                                           "model.warm_start.steps=0", "logging.progress=false",
                                           "resources.cpu_threads=2", "engine.max_new_tokens=2"])
        trainer = Trainer(recipe)
        assert trainer.threads == 2 and torch.get_num_threads() == 2
        trainer.close()
    finally:
        torch.set_num_threads(before)
