"""The self-improving data flywheel (DexFlyWheel sec. 4-5) on dexsuite's envs, generators and agents:

    python -m generators.flywheel --task handover --iters 3 [--quick] [--variant flywheel|replay_only|no_residual|no_aep]
        [--seed-scenarios SCENARIO ... | draw] [--data.cover True|False] [--base.* ...] [--residual.* ...] [--eval.* ...]

    from generators.flywheel import FlywheelConfig, run_flywheel
    report = run_flywheel(FlywheelConfig(task="grasp", quick=True))

Warm-up: the task's seed demos -> A_EP (environment and pose variation, the seeds' objects) -> D_1. A task starts from
its preset's seeds, one scripted demo per category of its objects (`TaskSpec.flywheel`; `--seed-scenarios draw`: one
drawn seed, as DexFlyWheel's single demo), because one seed's carried motion does not reach another category. The
environments and poses A_EP draws from widen every iteration (`--data.envs`, `--data.poses`: C_aug^i). Iteration
i = 1..iters, over object sets O_1 (the seeds' objects) c O_2 (their categories) c O_3 (every training object):
1. data:     D_i (i > 1) = A_EP over the last iteration's successful rollouts, each rollout's grasp carried on its
             category seed's motion to new environments and poses with its own object; with cover, also the seed onto
             each object of O_i that no kept rollout holds;
2. train:    the base policy on D_i (`--base.*`: agents.train's recipe; `--train-steps` per iteration);
3. residual: residual RL on the frozen base where the combined policy acts next (`--residual.*`: agents.residual's),
             at the alpha its validation keeps (0 switches it off);
4. eval:     base and combined policies on T_O^i (O_i in the seed's environment and pose) and T_OEP (held-out object x
             environment x pose configurations);
5. rollout:  the better policy on O_(i+1) in the seed's environment and pose; successes with a firm grasp are kept.
Then `report.md` (DexFlyWheel's Table 1), `report.png` and `report.json` (with the commit and every setting).

Modules: `config` (the nested config, presets, `resolve`), `stages` (typed stages), `rollouts`, `state` (state.json:
resume, refusal of other settings, training longer), `loop` (the iteration loop), `report`.

Every stage records itself in `<out>/state.json` when it finishes; running the same command again skips finished stages
and continues the interrupted one (training and A_EP from where they stopped, other stages from their start).
"""

from generators.flywheel.config import DataConfig, EvalConfig, FlywheelConfig, resolve, run_name
from generators.flywheel.loop import run_flywheel

__all__ = ["DataConfig", "EvalConfig", "FlywheelConfig", "resolve", "run_flywheel", "run_name"]
