"""Package a finished training run as shipped weights: ``microaunet_cli/weights/<name>.pt`` (the scored
network, its settings and normalisation; no optimiser or training state) and its model card
``<name>.md``, written from the run's own records (summary.json, config.yaml, env.json).

    python scripts/ship_weights.py runs/mix192-rt-s0 microaunet_rt-polyp --reproduce commands.txt
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from microaunet_cli.checkpoints import load_checkpoint, save_checkpoint
from microaunet_cli.weights import WEIGHTS_DIR, sha256

# What a shipped file keeps of a run's best.pt: enough to load, feed, describe and check it.
KEPT = ("role", "training", "curriculum", "model", "settings", "size", "dataset", "normalization")
KEPT += ("data_identity", "epoch", "best_mdice", "best_epoch", "metrics")

TERMS = """\
- **Data.** Trained on the PraNet training lists of Kvasir-SEG (900 images; Jha et al., MMM 2020)
  and CVC-ClinicDB (550 frames; Bernal et al., CMIG 2015), pooled (`polyp-mix`), with validation
  carved from them. Both data sets are released for research and educational use; cite them.
- **Use.** For research and education only. These weights are **not a medical device**, have not
  been validated clinically, and must not guide diagnosis or treatment.
"""


def slim_payload(ckpt: dict, summary: dict) -> dict:
    payload = {k: ckpt[k] for k in KEPT if k in ckpt}
    teacher = ckpt.get("teacher") or {}
    if teacher:  # where the teacher came from, without this machine's paths
        payload["teacher"] = {
            k: teacher[k] for k in ("model", "role", "training", "checksum") if k in teacher
        }
    payload["test"] = {
        split: {
            "mdice": s["per_image"]["mdice"],
            "miou": s["per_image"]["miou"],
            "dice_pooled": s["pooled"]["dice"],
            "n_images": s["n_images"],
            "resolution": s["resolution"],
        }
        for split, s in (summary.get("test") or {}).items()
    }
    return payload


def card(
    name: str,
    payload: dict,
    summary: dict,
    env: dict,
    config: str,
    reproduce: str,
    digest: str,
    note: str = "",
) -> str:
    rows = "\n".join(
        f"| {split} | {t['n_images']} | {t['mdice']:.4f} | {t['miou']:.4f} | {t['dice_pooled']:.4f} |"
        for split, t in payload["test"].items()
    )
    settings = payload["settings"]
    epochs, best = settings["train"]["epochs"], summary.get("best_epoch")
    machine = env.get("cpu") or env.get("device_name")
    threads = f"{env.get('cpu_threads')} thread" + ("" if env.get("cpu_threads") == 1 else "s")
    wall, train = summary.get("wall_seconds", 0), summary.get("train_seconds", 0)
    if "--resume" in env.get("command_line", ""):  # wall_seconds is the last session's only
        took = (
            f"trained over several sessions with `--resume`: {train / 60:.1f} min of training epochs"
            f" in all, {wall / 60:.1f} min of wall time in the last"
        )
    else:
        took = f"training took {wall / 60:.1f} min"
    return f"""# `{name}`

`{settings["model"]["name"]}` ({summary.get("params", 0):,} parameters), {payload.get("training")} on
`{payload.get("dataset")}` at {payload["size"]}×{payload["size"]} px, seed {settings["train"]["seed"]},
{epochs} epochs; the checkpoint of the best validation epoch ({best},
validation mDice {summary.get("best_val_mdice", 0):.4f}).{f" {note.strip()}" if note.strip() else ""}

```bash
microaunet predict --ckpt {name} --input photo.jpg --out out/   # mask: out/masks/photo.png
```

{TERMS}
## Test scores

Each test set scored apart, every prediction resized bilinearly to its ground truth's own size and
thresholded at 0.5 (original resolution); mDice and mIoU per image, then the mean; Dice pooled over
the set. One training run (one seed): see docs/RESULTS.md for the spread over seeds.

| test set | images | mDice | mIoU | Dice (pooled) |
| --- | ---: | ---: | ---: | ---: |
{rows}

## Reproduce

```bash
{reproduce.strip()}
```

Resolved settings of the run (`config.yaml`):

```yaml
{config.strip()}
```

- Commit: `{env.get("git_revision")}`; torch {env.get("torch_version")}, on {machine}
  ({threads}), {took}.
- Packaged with `python scripts/ship_weights.py RUN {name}`: the run's `best.pt` without its
  optimiser and training state, loadable with `torch.load(weights_only=True)`.
- SHA-256 of `{name}.pt`: `{digest}`
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="finished run folder (with summary.json)")
    ap.add_argument("name", help="name users will pass to --ckpt")
    ap.add_argument("--reproduce", type=Path, required=True, help="text file: the commands that reproduce it")
    ap.add_argument("--out-dir", type=Path, default=WEIGHTS_DIR)
    ap.add_argument("--note", default="", help="a sentence for the card header: how the run was chosen")
    args = ap.parse_args()
    summary = json.loads((args.run / "summary.json").read_text())
    env = json.loads((args.run / "env.json").read_text())
    config = (args.run / "config.yaml").read_text()
    yaml.safe_load(config)  # a readable config, or stop here
    payload = slim_payload(load_checkpoint(args.run / "checkpoints" / "best.pt"), summary)
    out = args.out_dir / f"{args.name}.pt"
    save_checkpoint(out, payload)
    digest = sha256(out)
    text = card(args.name, payload, summary, env, config, args.reproduce.read_text(), digest, args.note)
    (args.out_dir / f"{args.name}.md").write_text(text)
    print(f"{out} ({out.stat().st_size / 1024:.0f} KiB), sha256 {digest}")


if __name__ == "__main__":
    main()
