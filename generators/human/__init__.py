"""Human hand data in the EgoDex layout (Hoque et al., "EgoDex: Learning Dexterous Manipulation from Large-Scale
Egocentric Video", 2025): 30 Hz egocentric video with world poses of the camera, the upper body and 25 joints per hand.

- `layout`: the layout (joint names, file structure) and EgoDex's 48-D per-frame action;
- `reader`: `EgoDexEpisode`, `episodes`, `windows`: reads real EgoDex files and the stand-in alike;
- `standin`: `python -m generators.human.standin --task grasp --episodes N` makes EgoDex-layout episodes from the
  suite's simulation.

The generated episodes are a SIMULATION STAND-IN FOR HUMAN VIDEO, not human data: real EgoDex cannot be downloaded
here, so a scripted robot-hand expert's motion is dressed as a tracked human skeleton (with tracker-like noise and
occlusions) and the video shows the simulated robot hand. Every stand-in file says so in its `source` attribute. What
consumes human data (trajectory prediction, retargeting to robot hands, co-training) runs on it unchanged and should
be re-run on real EgoDex files before any conclusion about human data is drawn.
"""
