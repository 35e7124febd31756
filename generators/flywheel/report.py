"""The flywheel's report: `report.md` (DexFlyWheel's Table 1 shape, every success rate with its episodes and 95%
interval), `report.png` (data diversity and success per iteration) and `report.json` (every figure, setting and stage
time, and the commit that made them)."""

from __future__ import annotations

from pathlib import Path

from dexenvs.rates import compare, format_count, format_rate
from dexenvs.results import atomic_write, save_json, save_text


def rate(f: dict) -> str:
    return format_rate(f["successes"], f["episodes"])


def _sr(e: dict, name: str, residual: bool) -> str:
    s = rate(e[f"{name}/base"])
    if residual and f"{name}/combined" in e:
        c = e[f"{name}/combined"]
        b = e[f"{name}/base"]
        s += f" → **{rate(c)}**" + (" (alpha 0: the base)" if c.get("same_as_base") else
                                     f" ({compare((b['successes'], b['episodes']), (c['successes'], c['episodes']))})")
    return s


def table(report: dict) -> list[str]:
    residual = report["variant"] in ("flywheel", "no_aep")
    lines = ["| Iter. | O | E | P | Configs (OxExP) | Traj. | SR in T_O^i | SR in T_OEP |",
             "|---|---|---|---|---|---|---|---|"]
    for it in report["iterations"]:
        d, e = it["data"], it["eval"]["figures"]
        lines.append(f"| i = {it['iteration']}{' (replay fallback)' if d.get('fallback') else ''} | {d['objects']} | "
                     f"{d['environments']} | {d['poses']} | {d['configs']} | {d['trajectories']} | "
                     f"{_sr(e, 'T_O', residual)} | {_sr(e, 'T_OEP', residual)} |")
    return lines


def write_report(out: Path, report: dict) -> None:
    its = report["iterations"]
    residual = report["variant"] in ("flywheel", "no_aep")
    prov = report.get("provenance", {})
    lines = [f"# Flywheel report: {report['task']} ({report['variant']})", "",
             "DexFlyWheel's Table 1 shape. SR: success rate with its 95% interval (Wilson) and episodes"
             + (", base → combined (base + residual)" if residual else ", base policy") + "."
             + (" D_i (i > 1) carries each rollout's grasp on its category seed's motion."
                if report["variant"] in ("flywheel", "no_residual") else "")
             + f" Commit {prov.get('commit')}.", "", *table(report)]
    lines += ["", "| Stage | Seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.0f} |" for k, v in report["stage_seconds"].items()]
    lines += [f"| **total** | **{report['total_stage_seconds']:.0f}** ({report['total_stage_seconds'] / 60:.1f} min) |", ""]
    for it in its:
        i, d, e = it["iteration"], it["data"], it["eval"]["figures"]
        if d.get("seed_objects") is not None:
            missed = d["seed_objects"]
            lines.append(f"- D_{i}: {len(missed)} objects of O_{i} held by no kept rollout, carried from their category "
                         "seed (cover)" + (": " + ", ".join(missed) if missed else ""))
        v = (it.get("residual") or {}).get("validation")
        if v:
            lines.append(f"- iteration {i} residual: alpha {v['chosen']:g} kept on validation ("
                         + ", ".join(f"{float(a):g}: {format_count(round(r * v['episodes']), v['episodes'])}"
                                     for a, r in v["success"].items())
                         + f" of {v['episodes']} validation episodes on its training objects; 0 is the base)")
        if it["rollout"]:
            r = it["rollout"]
            if "T_next/base" in e:
                lines.append(f"- iteration {i} on O_{i + 1} (seed's E and P): base {rate(e['T_next/base'])} → "
                             f"combined {rate(e['T_next/combined'])}")
            lines.append(f"- iteration {i} rollouts ({r['policy']} policy): {r['task_successes']}/{r['attempts']} "
                         f"succeeded, {r['successes']} kept with a firm grasp (slip <= {r['max_slip'] * 1000:.0f} mm; "
                         "0: all); per object (kept/succeeded/attempts) "
                         + ", ".join(f"{o} {v['kept']}/{v['successes']}/{v['attempts']}" for o, v in r["per_object"].items()))
    lines += ["", "![diversity and success per iteration](report.png)", ""]
    f = report.get("film")
    if f:
        lines += [f"The final {f['policy']} policy on held-out (T_OEP) scenarios, {f['episodes']} episodes filmed:", ""]
        lines += [f"- {k}: ![{k}]({v['gif']}) ([mp4]({v['mp4']}))" for k, v in f["videos"].items()]
        if len(f["videos"]) < 2:
            lines.append(f"- every filmed episode was a {'success' if 'success' in f['videos'] else 'failure'}")
        lines.append("")
    save_text(out / "report.md", "\n".join(lines))
    save_json(out / "report.json", report)
    plot(out, report, residual)
    print("\n".join(lines[:6 + len(its)]))
    print(f"[flywheel] wrote {out / 'report.md'}, {out / 'report.png'}, {out / 'report.json'}")


def plot(out: Path, report: dict, residual: bool) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    its = report["iterations"]
    x = [it["iteration"] for it in its]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    for key, label in (("objects", "O"), ("environments", "E"), ("poses", "P"), ("configs", "O x E x P"),
                       ("trajectories", "trajectories")):
        a1.plot(x, [it["data"][key] for it in its], "o-", label=label)
    a1.set_yscale("log")
    a1.set_xlabel("iteration")
    a1.set_title("data diversity of D_i")
    a1.legend()
    for key, style in (("T_O/base", "o--"), ("T_O/combined", "o-"), ("T_OEP/base", "s--"), ("T_OEP/combined", "s-")):
        if all(key in it["eval"]["figures"] for it in its):
            figs = [it["eval"]["figures"][key] for it in its]
            p = [f["successes"] / max(1, f["episodes"]) for f in figs]
            err = [[pi - f["interval"][0] for pi, f in zip(p, figs)], [f["interval"][1] - pi for pi, f in zip(p, figs)]]
            a2.errorbar(x, p, err, fmt=style, capsize=3, label=key)
    a2.set_ylim(-0.02, 1.02)
    a2.set_xlabel("iteration")
    a2.set_title("success rate (95% interval)")
    a2.legend()
    a1.set_xticks(x)
    a2.set_xticks(x)
    fig.suptitle(f"{report['task']} ({report['variant']})")
    fig.tight_layout()
    with atomic_write(out / "report.png") as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
