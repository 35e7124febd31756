"""DexterityGen's two grasp-set stages (appendix, Algorithms 2-5), batched in torch.

1. Heuristic sampling: 2-4 surface contacts whose unit inward forces can cancel (the net-force test), a random object
   orientation, the thumb and 1-3 other fingers assigned to the contacts, joints and object position found together by
   gradient-based IK, candidates with the hand inside the object removed.
2. RRT expansion in (joints, object pose): a random sample, its nearest grasp, a small step toward it, contacts fixed
   (the same fingers pulled back onto the surface, nothing inside the object), the net-force test again, added.

Grasps are in the hand's base frame: joints q (action order), the object's position t and rotation R (object -> hand).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import nnls
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from generators.grasps.hand import HandModel
from generators.grasps.shape import ObjectShape

# contact tips are placed this far off the surface: PhysX pushes a body out of even a millimetre's overlap at speed,
# and the validation's squeeze closes the gap
CLEARANCE = 0.0005


@dataclass
class Candidates:
    q: torch.Tensor  # (B, J)
    t: torch.Tensor  # (B, 3) object position in the hand frame
    R: torch.Tensor  # (B, 3, 3) object rotation in the hand frame
    fingers: torch.Tensor  # (B, F) bool: the fingers in contact
    contacts: torch.Tensor  # (B, F, 3) contact points in the object frame (zeros where no contact)
    normals: torch.Tensor  # (B, F, 3) outward surface normals there
    penetration: torch.Tensor  # (B,) deepest hand point inside the object (m, >= 0)

    def __len__(self) -> int:
        return len(self.q)

    def select(self, keep: torch.Tensor) -> "Candidates":
        return Candidates(*(getattr(self, f)[keep] for f in self.__dataclass_fields__))

    @staticmethod
    def cat(parts: list["Candidates"]) -> "Candidates":
        return Candidates(*(torch.cat([getattr(p, f) for p in parts]) for f in Candidates.__dataclass_fields__))


def force_closure_residual(normals: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per candidate, min |sum w_i n_i| over w >= 0, sum w = 1 (the contacts' unit forces): 0 where they can cancel."""
    out = np.ones(len(normals))
    for b in range(len(normals)):
        n = normals[b][mask[b]].T  # (3, k)
        if n.shape[1] < 2:
            continue
        a = np.vstack([n, 10.0 * np.ones((1, n.shape[1]))])  # the sum-to-one row, weighted
        w, _ = nnls(a, np.r_[0, 0, 0, 10.0])
        out[b] = np.linalg.norm(n @ w)
    return out


def _nominal(hand: HandModel, b: int) -> torch.Tensor:
    q = torch.zeros(b, len(hand.joint_names))
    for f in hand.fingers:
        q[:, list(f.joints)] = torch.tensor(f.relaxed)
    return hand.clamp(q)


def _penetration(hand: HandModel, shape: ObjectShape, q, t, R, fingers):
    """Points of the hand inside the object: link points (B, P) and the free fingertips' spheres (B, F), in metres."""
    tips, pts = hand.tips_and_points(q)
    to_obj = lambda x: (x - t[:, None]) @ R  # hand frame -> object frame
    d_pts, _ = shape.sdf(to_obj(pts))
    d_tip, n_tip = shape.sdf(to_obj(tips))
    free_tip = torch.where(fingers, torch.zeros_like(d_tip), (hand.tip_radius - d_tip).clamp_min(0))
    return (-d_pts).clamp_min(0), free_tip, to_obj(tips), d_tip, n_tip


def _solve(hand, shape, q, t, R, fingers, target, steps: int, q_anchor=None, lr: float = 0.01):
    """Gradient IK over joints and object position. `target` (B, F, 3): where each contact finger's tip centre should
    be in the object frame, or None to pull contact tips onto the surface (RRT's contact fixing)."""
    q = q.clone().requires_grad_(True)
    t = t.clone().requires_grad_(True)
    opt = torch.optim.Adam([q, t], lr=lr)
    w = fingers.float()
    for _ in range(steps):
        pen, free_tip, tips_obj, d_tip, _ = _penetration(hand, shape, q, t, R, fingers)
        if target is not None:
            contact = ((tips_obj - target).square().sum(-1) * w).sum(-1)
        else:
            contact = ((d_tip - hand.tip_radius - CLEARANCE).square() * w).sum(-1)
        loss = 100 * contact + 100 * pen.square().sum(-1) + 100 * free_tip.square().sum(-1)
        if q_anchor is not None:
            loss = loss + 1e-3 * (q - q_anchor).square().sum(-1)
        opt.zero_grad()
        loss.sum().backward()
        opt.step()
        with torch.no_grad():
            q.copy_(hand.clamp(q))
    return q.detach(), t.detach()


def _finish(hand, shape, q, t, R, fingers, tol: float) -> tuple[Candidates, torch.Tensor]:
    """The candidates with their contacts read off the solved pose, and which ones touch where they should."""
    with torch.no_grad():
        pen, free_tip, tips_obj, d_tip, n_tip = _penetration(hand, shape, q, t, R, fingers)
        touching = ((d_tip - hand.tip_radius - CLEARANCE).abs() < tol) | ~fingers
        contacts = torch.where(fingers[..., None], tips_obj - hand.tip_radius * n_tip, torch.zeros_like(tips_obj))
        normals = torch.where(fingers[..., None], n_tip, torch.zeros_like(n_tip))
        depth = torch.maximum(pen.max(-1).values, free_tip.max(-1).values)
        # a contact tip pressing in is penetration too
        depth = torch.maximum(depth, ((hand.tip_radius - d_tip) * fingers).max(-1).values.clamp_min(0))
    c = Candidates(q, t, R, fingers, contacts, normals, depth)
    return c, touching.all(-1)


def sample_grasps(hand: HandModel, shape: ObjectShape, n: int, rng: np.random.Generator, ik_steps: int = 150,
                  tol: float = 0.001, max_penetration: float = 0.001, closure: float = 0.15) -> tuple[Candidates, dict]:
    """Stage 1: `n` contact sets tried; returns the kinematically feasible grasps and the count kept at each step."""
    nf = len(hand.fingers)
    thumb = next(i for i, f in enumerate(hand.fingers) if f.opposes)
    others = [i for i in range(nf) if i != thumb]
    surf, norms = shape.surface.numpy(), shape.surface_normals.numpy()
    fingers = np.zeros((n, nf), bool)
    idx = np.zeros((n, nf), int)
    for b in range(n):
        k = rng.integers(2, min(4, nf) + 1)
        chosen = [thumb] + list(rng.choice(others, k - 1, replace=False))
        fingers[b, chosen] = True
        first = rng.integers(len(surf))
        idx[b, thumb] = first
        # the others roughly against the thumb: contacts that can cancel it
        facing = np.flatnonzero(norms @ norms[first] < -0.3)
        pool = facing if len(facing) else np.arange(len(surf))
        idx[b, chosen[1:]] = rng.choice(pool, k - 1, replace=len(pool) < k - 1)
    normals = np.where(fingers[..., None], norms[idx], 0.0)
    res = force_closure_residual(normals, fingers)
    counts = dict(contact_sets=n, net_force=int((res < closure).sum()))
    keep = res < closure
    fingers, idx = fingers[keep], idx[keep]
    b = len(fingers)
    if b == 0:
        return None, dict(counts, ik=0, collision_free=0)
    R = torch.tensor(Rotation.random(b, random_state=rng).as_matrix(), dtype=torch.float32)
    f = torch.tensor(fingers)
    c_obj = torch.tensor(surf[idx], dtype=torch.float32)
    n_obj = torch.tensor(norms[idx], dtype=torch.float32)
    target = c_obj + (hand.tip_radius + CLEARANCE) * n_obj  # the tip's centre sits one radius out along the normal
    q0 = _nominal(hand, b)
    # the object in front of the palm, between the fingers; IK moves it to where the fingers reach its contacts
    t0 = torch.tensor([0.012 + shape.radius + 0.01, 0.0, 0.07]).expand(b, 3) - (shape.center @ R.transpose(1, 2))
    t0 = t0 + torch.tensor(rng.normal(0, 0.01, (b, 3)), dtype=torch.float32)
    q, t = _solve(hand, shape, q0, t0, R, f, target, ik_steps)
    cand, touching = _finish(hand, shape, q, t, R, f, tol)
    reached = touching & ((cand.contacts - c_obj).norm(dim=-1) * f).amax(-1).lt(0.01)
    counts["ik"] = int(reached.sum())
    ok = reached & (cand.penetration < max_penetration)
    counts["collision_free"] = int(ok.sum())
    return cand.select(ok), counts


def _features(q: torch.Tensor, t: torch.Tensor, R: torch.Tensor) -> np.ndarray:
    """Coordinates in which Euclidean distance is the RRT's metric: joints per 0.5 rad, position per 2 cm, rotation per
    0.2 rad (|R1 - R2|_F ~ sqrt(2) angle)."""
    return torch.cat([q / 0.5, t / 0.02, R.reshape(len(R), 9) / (0.2 * np.sqrt(2))], -1).numpy()


def expand(hand: HandModel, shape: ObjectShape, grasps: Candidates, n: int, rng: np.random.Generator,
           step_q: float = 0.15, step_rot: float = 0.15, fix_steps: int = 40, tol: float = 0.001,
           max_penetration: float = 0.001, closure: float = 0.15) -> tuple[Candidates, dict]:
    """Stage 2, one round of `n` RRT extensions from `grasps`; returns the new grasps and the count kept at each step."""
    nj = len(hand.joint_names)
    q_rand = hand.low + (hand.high - hand.low) * torch.tensor(rng.random((n, nj)), dtype=torch.float32)
    R_rand = torch.tensor(Rotation.random(n, random_state=rng).as_matrix(), dtype=torch.float32)
    t_rand = grasps.t[rng.integers(len(grasps), size=n)] + torch.tensor(rng.normal(0, 0.01, (n, 3)), dtype=torch.float32)
    tree = cKDTree(_features(grasps.q, grasps.t, grasps.R))
    _, near = tree.query(_features(q_rand, t_rand, R_rand))
    base = grasps.select(torch.as_tensor(near))
    # a small step toward the sample: joints by at most step_q (rad, norm), rotation by at most step_rot (rad)
    dq = q_rand - base.q
    q = hand.clamp(base.q + dq * (step_q / dq.norm(dim=-1, keepdim=True).clamp_min(step_q)))
    rel = Rotation.from_matrix((base.R.transpose(1, 2) @ R_rand).numpy().astype(np.float64)).as_rotvec()
    ang = np.linalg.norm(rel, axis=1, keepdims=True)
    rel = rel * np.minimum(1.0, step_rot / np.maximum(ang, 1e-9))
    R = base.R @ torch.tensor(Rotation.from_rotvec(rel).as_matrix(), dtype=torch.float32)
    q, t = _solve(hand, shape, q, base.t, R, base.fingers, None, fix_steps, q_anchor=q)
    cand, touching = _finish(hand, shape, q, t, R, base.fingers, tol)
    counts = dict(extensions=n, contacts_fixed=int(touching.sum()))
    ok = touching & (cand.penetration < max_penetration)
    counts["collision_free"] = int(ok.sum())
    res = force_closure_residual(cand.normals.numpy(), cand.fingers.numpy())
    ok = ok & torch.as_tensor(res < closure)
    counts["net_force"] = int(ok.sum())
    return cand.select(ok), counts
