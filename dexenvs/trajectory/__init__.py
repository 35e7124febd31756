"""The suite's on-disk trajectory format (robomimic's HDF5 layout with MimicGen's datagen info) and the recorder that
writes it."""
from dexenvs.trajectory.dataset import (DatasetError, DatasetWriter, Episode, demo_names, env_args, merge_datasets,
                                        open_dataset, read_episode)
from dexenvs.trajectory.recorder import Recorder, env_args_of, flatten_obs, make_env

__all__ = ["DatasetError", "DatasetWriter", "Episode", "Recorder", "demo_names", "env_args", "env_args_of",
           "flatten_obs", "make_env", "merge_datasets", "open_dataset", "read_episode"]
