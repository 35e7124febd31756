"""A_EP augmentation (DexFlyWheel sec. 4.2-4.3, on MimicGen's recipe): one seed demo becomes many successful demos
across environments, object poses and objects.

    python -m generators.augment --task grasp --num 200 [--source demos/grasp/seed.hdf5] [--split train]
        [--objects category] [--workers 2] [--resume]

Modules: `phases` (subtasks and their frames), `geometry` (poses, symmetry, step limits), `augmenter` (one attempt),
`sampling` (where attempts go), `generate` (the resumable run on the executor), `graft` (a rollout's grasp on the
seed's motion, and the slip metric).

How a new demo is made:
1. The source demo is cut into object-centric subtasks at its phase labels, per hand (`segment_source`).
2. For a new scenario (object O, environment E, pose P), each subtask's wrist targets are carried by its reference's new
   pose, read live at the subtask's start: T_new = T_ref_new * inv(T_ref_src) * T_src. The reference is the object
   (MimicGen's default), the task's second object (the pour's bowl) or the hand's own start pose (the handover giver),
   as the task's spec says (`TaskSpec.references`).
   A round object's or a box's pose is first turned about its axis by its symmetry to be nearest the source's, so a
   can at another yaw keeps the seed's approach instead of dragging the hand around it.
3. Finger targets are replayed verbatim; between subtasks the wrist interpolates from where it was to the subtask's
   first target (at most 2 cm / 0.1 rad a step, at least `--interp-steps` steps when it has to move at all).
4. Two-hand tasks cut at the union of both hands' boundaries: these are the synchronisation points. At each, every
   hand that starts a subtask interpolates while the other holds still, and both go on together.
5. The episode runs in the sim until success or failure (holding the last target for `--tail-steps` after the plan);
   only successes are kept.

Environments and poses (C_aug): `--envs N` draws from the source's environment and the next N-1 train environments,
`--poses N` from the N train poses nearest the source's; the flywheel widens both every iteration. Default: all.

Objects: `--objects seed` keeps the seed's object, `category` (default) uses the split's objects of the seed's
category, `all` every object of the split. A source with several seeds (`generators.seed --scenarios`, one per
category) carries to each object a seed of its own category (`source_for`); the poses and environments are drawn around
the first seed's. The summary reports success per object, which says where the carried grasp
still holds. Attempt k's scenario and reset seed are a pure function of (--seed, k), so results do not depend on the
number of workers, and a resumed run continues at the first attempt it had not finished, adding no duplicates.

Writes `<out>` (robomimic layout, with `data.attrs["generation"]`), `<out>.attempts.jsonl` (one line per attempt, in
attempt order: what resume reads) and `<out stem>.json` (the summary: attempts, successes, success rate, demos per
hour, coverage of O, E, P and O x E x P, per-object success).
"""
from generators.augment.augmenter import Augmenter
from generators.augment.generate import AugmentConfig, generate
from generators.augment.geometry import HAND_DIM, symmetric_match
from generators.augment.graft import graft_grasp, hand_grasp, hold_slip, slip_rejection, RISEN
from generators.augment.phases import Segment, label_phases, segment_source
from generators.augment.sampling import attempt_scenario, object_pool, source_for

__all__ = ["Augmenter", "AugmentConfig", "HAND_DIM", "RISEN", "Segment", "attempt_scenario", "generate", "graft_grasp",
           "hand_grasp", "hold_slip", "label_phases", "object_pool", "segment_source", "slip_rejection",
           "source_for", "symmetric_match"]
