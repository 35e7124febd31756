"""The planner expert of DexRegrasp-v0: reaches a goal grasp along a path of grasp-to-grasp edges, re-planning after
every edge (DexterityGen's grasp graph, walked closed-loop).

The graph's nodes are the object's grasp set; its edges join kNN neighbours at most `hop_max` apart in pose distance.
Where `python -m generators.transitions` has executed the edges in simulation (an `.edges.npz` beside the set), only
the edges that arrived are kept. One edge is a smooth interpolation of the joint drive targets from where they are to
the next grasp's targets over `hop_steps` control steps; then the expert localises the object again (the grasp nearest
to the object's actual pose and the hand's joints) and plans from there, so a slipped edge is recovered from instead
of followed blindly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

HOP_STEPS = 10
HOP_MAX = 2.5  # pose-distance units (1 cm / 0.1 rad) between consecutive grasps of a path
JOINT_SCALE = 0.3  # rad of joint difference that weighs like one unit of pose distance when localising


def edges_path(grasp_set_path: Path) -> Path:
    return Path(grasp_set_path).with_suffix(".edges.npz")


def load_edges(path: Path) -> dict[str, np.ndarray] | None:
    """Executed edges (`src`, `dst`, `ok`) if the file exists."""
    if not Path(path).exists():
        return None
    with np.load(path) as z:
        return {k: z[k] for k in ("src", "dst", "ok")}


class GraspGraph:
    """Shortest paths over one object's grasp set."""

    def __init__(self, gs, hop_max: float = HOP_MAX, edges: dict[str, np.ndarray] | None = None):
        from scipy.sparse import csr_matrix

        n = len(gs)
        src = np.repeat(np.arange(n), gs.knn.shape[1])
        dst, w = gs.knn.reshape(-1), gs.knn_dist.reshape(-1).astype(np.float64)
        keep = w <= hop_max
        if edges is not None:  # executed edges: keep the kNN edges that arrived, and only those
            ok = {(int(a), int(b)) for a, b, k in zip(edges["src"], edges["dst"], edges["ok"]) if k}
            keep &= np.array([(int(a), int(b)) in ok for a, b in zip(src, dst)], dtype=bool)
        self.n = n
        self.graph = csr_matrix((np.maximum(w[keep], 1e-3), (src[keep], dst[keep])), shape=(n, n))
        self._toward: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def next_hop(self, cur: int, goal: int) -> int:
        """The grasp after `cur` on a shortest path to `goal`; `goal` itself when no path is known (a direct try)."""
        if cur == goal:
            return goal
        if goal not in self._toward:
            from scipy.sparse.csgraph import dijkstra

            # paths *to* the goal: search from it over reversed edges; pred[v] is then v's next grasp toward the goal
            dist, pred = dijkstra(self.graph.T, indices=goal, return_predecessors=True)
            self._toward[goal] = (dist, pred)
        dist, pred = self._toward[goal]
        return int(pred[cur]) if np.isfinite(dist[cur]) and pred[cur] >= 0 else goal


class RegraspPlanner:
    """Acts in `pd_joint_pos` (absolute targets) or `pd_joint_target_delta_pos` (target deltas).

    Each step it moves the object toward the next grasp of its path as a rigid body held at its contacts: the
    fingertips touching the object are displaced as points of the object would be (dt + dtheta x r, the grasp
    matrix), mapped to joint target changes through each finger's Jacobian (the hand's pinocchio model), so the squeeze
    that holds the object rides along; free fingers move toward the next grasp's joints. The path's next grasp is
    re-planned whenever the current one is reached or `hop_steps` have passed."""

    max_step_pos = 0.004  # m of object motion asked for per control step
    max_step_rot = 0.05  # rad
    gain = 0.5
    contact_distance = 0.02  # m from a fingertip's centre to the object's box: the finger touches it

    def __init__(self, env, hop_steps: int = HOP_STEPS, hop_max: float = HOP_MAX, use_edges: bool = True):
        from dexenvs.robots import ROBOTS
        from dexenvs.tasks.regrasp import grasp_set_path

        self.env = env.unwrapped
        mode = self.env.control_mode
        if mode not in ("pd_joint_pos", "pd_joint_target_delta_pos"):
            raise ValueError(f"the regrasp planner drives joint targets: make the env with control_mode "
                             f"'pd_joint_pos' or 'pd_joint_target_delta_pos', not {mode!r}")
        self.absolute = mode == "pd_joint_pos"
        self.hop_steps, self.hop_max, self.use_edges = int(hop_steps), float(hop_max), use_edges
        self._graphs: dict[str, GraspGraph] = {}
        self._path_of = lambda obj: grasp_set_path(self.env.robot_names[0], obj, self.env.grasp_dir)
        hand = ROBOTS[self.env.robot_names[0]]
        self.fingers = hand.fingers
        art = self.env.agent.robot._objs[0]
        self._pin = art.create_pinocchio_model()
        names = [l.get_name() for l in art.get_links()]
        self._tip_index = [[n.endswith("_" + f.tip_link) for n in names].index(True) for f in hand.fingers]
        self._order = self.env._qpos_order.cpu().numpy()  # action order -> SAPIEN qpos order
        lim = np.concatenate([j.get_limits() for j in art.get_active_joints()])
        inv = np.argsort(self._order)
        self._low, self._high = lim[inv, 0].astype(np.float32), lim[inv, 1].astype(np.float32)

    @property
    def horizon(self) -> int:
        return self.env.max_episode_steps

    def graph(self, object_id: str) -> GraspGraph:
        if object_id not in self._graphs:
            edges = load_edges(edges_path(self._path_of(object_id))) if self.use_edges else None
            self._graphs[object_id] = GraspGraph(self.env.grasp_set(object_id).set, self.hop_max, edges)
        return self._graphs[object_id]

    def reset(self) -> None:
        self._hops: list[dict | None] = [None] * self.env.num_envs

    def localize(self, i: int) -> int:
        """The grasp of the set nearest to sub-env i's object pose and hand joints."""
        from dexenvs.tasks.regrasp import quat_angle

        env = self.env
        s = env.snapshot()
        gs = env.grasp_set(env.scenarios[i].object_id)
        pos_d = (gs.pos - s["obj_pos_hand"][i]).norm(dim=-1) / 0.01
        rot_d = quat_angle(gs.quat, s["obj_quat_hand"][i].expand_as(gs.quat)) / 0.1
        joint_d = (gs.q - env.agent.controller.qpos[i]).norm(dim=-1) / JOINT_SCALE
        return int(torch.argmin(torch.sqrt(pos_d ** 2 + rot_d ** 2) + joint_d))

    def _tips_and_jacobians(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fingertip centres (F, 3) in the hand frame and their Jacobians (F, 3, J) by finite differences, joints in
        action order."""
        def tips(qa):
            self._pin.compute_forward_kinematics(qa[self._order])
            return np.stack([self._pin.get_link_pose(k).p for k in self._tip_index])

        base, eps = tips(q), 1e-4
        jac = np.zeros((len(self._tip_index), 3, len(q)))
        for f in self.fingers:
            for j in f.joints:
                dq = q.copy()
                dq[j] += eps
                jac[:, :, j] = (tips(dq) - base) / eps
        return base, jac

    def _waypoint(self, i: int) -> dict:
        env = self.env
        hop = self._hops[i]
        obj = env.scenarios[i].object_id
        goal = int(env.goal_grasp[i])
        if hop is None or hop["goal"] != goal or hop["t"] >= self.hop_steps or self._reached(i, hop["to"]):
            nxt = self.graph(obj).next_hop(self.localize(i), goal)
            # after a hop that made no progress, the next is a direct one: the joints interpolate to the grasp's
            # targets (a pinch cannot turn the object about the line between its two contacts; a new finger can)
            stalled = hop is not None and hop["goal"] == goal and float(env.goal_distance()[i]) > hop["d0"] - 0.2
            hop = self._hops[i] = dict(to=nxt, goal=goal, t=0, d0=float(env.goal_distance()[i]),
                                       direct=stalled and not hop["direct"],
                                       start=env.agent.controller._target_qpos[i].clone())
        hop["t"] += 1
        return hop

    def _reached(self, i: int, g: int) -> bool:
        from dexenvs.tasks.regrasp import quat_angle

        env, s = self.env, self.env.snapshot()
        gs = env.grasp_set(env.scenarios[i].object_id)
        d = torch.sqrt(((s["obj_pos_hand"][i] - gs.pos[g]).norm() / 0.01) ** 2
                       + (quat_angle(s["obj_quat_hand"][i], gs.quat[g]) / 0.1) ** 2)
        return bool(d < 1.0)

    def act(self, obs=None) -> tuple[torch.Tensor, list[str]]:
        from scipy.spatial.transform import Rotation

        env = self.env
        s = env.snapshot()
        ctrl = env.agent.controller
        current = ctrl._target_qpos.clone()
        targets = current.clone()
        for i in range(env.num_envs):
            hop = self._waypoint(i)
            gs = env.grasp_set(env.scenarios[i].object_id)
            if hop["direct"]:
                a = 0.5 - 0.5 * np.cos(np.pi * hop["t"] / self.hop_steps)
                targets[i] = hop["start"] + a * (gs.target[hop["to"]] - hop["start"])
                continue
            center_local = env._obj_center_local[i].cpu().numpy()
            p_obj, q_obj = s["obj_pos_hand"][i].cpu().numpy(), s["obj_quat_hand"][i].cpu().numpy()
            p_to, q_to = gs.pos[hop["to"]].cpu().numpy(), gs.quat[hop["to"]].cpu().numpy()
            r_obj, r_to = Rotation.from_quat(q_obj, scalar_first=True), Rotation.from_quat(q_to, scalar_first=True)
            c_obj, c_to = p_obj + r_obj.apply(center_local), p_to + r_to.apply(center_local)
            dc = self.gain * (c_to - c_obj)
            dth = self.gain * (r_to * r_obj.inv()).as_rotvec()
            dc *= min(1.0, self.max_step_pos / max(np.linalg.norm(dc), 1e-9))
            dth *= min(1.0, self.max_step_rot / max(np.linalg.norm(dth), 1e-9))
            q = ctrl.qpos[i].cpu().numpy().astype(np.float64)
            tips, jac = self._tips_and_jacobians(q)
            tgt = current[i].cpu().numpy().astype(np.float64)
            goal_q = gs.target[hop["to"]].cpu().numpy()
            touching = env.distance_to_object(torch.as_tensor(
                (env._hand_rot[i] @ torch.as_tensor(tips.T, dtype=torch.float32)).T + env._hand_pos[i],
                dtype=torch.float32).unsqueeze(0).expand(env.num_envs, -1, -1))[i].cpu().numpy() < self.contact_distance
            for fi, f in enumerate(self.fingers):
                js = list(f.joints)
                if touching[fi]:
                    push = dc + np.cross(dth, tips[fi] - c_obj)
                    tgt[js] += np.linalg.lstsq(jac[fi][:, js], push, rcond=1e-3)[0]
                else:  # a free finger shapes toward the next grasp
                    tgt[js] += self.gain * (goal_q[js] - tgt[js])
            targets[i] = torch.as_tensor(np.clip(tgt, self._low, self._high), dtype=targets.dtype)
        if self.absolute:
            return targets, ["regrasp"] * env.num_envs
        cfg = ctrl.config  # the delta mode's actions are normalised to its step bound
        action = ((targets - current) / cfg.upper).clamp(-1, 1) if cfg.normalize_action else targets - current
        return action, ["regrasp"] * env.num_envs
