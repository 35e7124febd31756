"""The DexGen controller (DexterityGen, Yin et al. 2025, section III): a diffusion model over the next T steps of the
hand's K finger keypoints (in the hand frame), conditioned on a short history of the hand's own state and a mode; an
inverse dynamics model that turns a keypoint motion into joint position targets; and guided sampling that pulls each
denoising step toward an external keypoint-motion command, so a coarse or noisy command is followed through motions
the training data shows to be stable.

- `features`: what the model sees and predicts, from an env's observation or a dataset's demo
- `kinematics`: the hand's keypoints as a function of its joints (forward kinematics, Jacobians, retargeting)
- `model`: the networks, the normalizer and guided DDIM sampling
- `data`: training samples from datasets in the project's format (transition data, free finger motion)
- `train`: `python -m agents.dexgen.train --dataset ...`
- `controller`: `DexGenController`, a wrapper whose action is a keypoint-motion command, and `DirectController`, the
  same command retargeted to joint targets without the model (the baseline)
- `commands`: command sources for evaluation (the planner expert's motion, clean or corrupted; coarse teleoperation)
"""
