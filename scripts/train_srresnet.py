"""Train the packaged ``srresnet-x4`` weights (pixel-loss SRResNet x4) on a CPU.

This is the exact recipe behind the shipped default model (see docs/models.md). It keeps the whole training set
in memory with LR images made once by the MATLAB-style bicubic of the benchmark protocol, and trains with bf16
autocast + channels_last. Resumable: rerun the same command to continue from ``OUT/last.pt``.

    python scripts/train_srresnet.py --data ../shared/data/T91 ../shared/data/BSDS200 \
        --val ../shared/data/Set5 --out runs/srresnet-x4 --steps 9000
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from srgan.degradation import imresize, modcrop, quantize
from srgan.metrics import psnr, rgb_to_y
from srgan.models import Generator
from srgan.weights import load_checkpoint

log = logging.getLogger("train_srresnet")
EXTS = {".png", ".bmp", ".jpg", ".jpeg", ".webp", ".tif", ".tiff"}


def load_packed(d: Path) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Read pairs written by scripts/pack_pairs.py (``NAME_hr.webp`` + ``NAME_lr.webp``, LR already made)."""

    def read(path: Path) -> torch.Tensor:
        return torch.from_numpy(np.asarray(Image.open(path).convert("RGB")).copy()).permute(2, 0, 1)

    hr_paths = sorted(d.glob("*_hr.webp"))
    with ThreadPoolExecutor(8) as ex:
        hrs = list(ex.map(read, hr_paths))
        lrs = list(ex.map(read, [p.with_name(p.name[: -len("_hr.webp")] + "_lr.webp") for p in hr_paths]))
    return list(zip(hrs, lrs, strict=True))


def load_pairs(dirs: list[str]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    pairs = []
    for d in dirs:
        if any(Path(d).glob("*_hr.webp")):
            pairs += load_packed(Path(d))
            continue
        for p in sorted(Path(d).rglob("*")):
            if p.suffix.lower() not in EXTS:
                continue
            img = np.asarray(Image.open(p).convert("RGB"))
            hr = modcrop(torch.from_numpy(img.copy()).permute(2, 0, 1), 4)
            lr = quantize(imresize(hr.double().unsqueeze(0) / 255, scale=0.25))[0]
            pairs.append((hr, torch.round(lr * 255).to(torch.uint8)))
    return pairs


def teacher_targets(
    teacher: str, pairs: list[tuple[torch.Tensor, torch.Tensor]], cache: str | None, device: str = "cpu"
) -> list[torch.Tensor]:
    """The x8 self-ensemble output of ``teacher`` for each pair's LR image, uint8 (3, H, W) like the HR image.

    Computed in fp32 on ``device``; kept in ``cache`` (written atomically, so runs can share it) when given.
    """
    if cache and Path(cache).exists():
        out = torch.load(cache, weights_only=True)
        shapes = [tuple(hr.shape) for hr, _ in pairs]
        if [tuple(t.shape) for t in out] != shapes:
            raise ValueError(
                f"teacher cache {cache} holds {len(out)} images that do not match the {len(shapes)} training images "
                "(other data or another order): delete it to recompute"
            )
        return out
    from srgan import SRGAN

    model = SRGAN.from_pretrained(teacher, device=device, dtype="fp32")
    t0, out = time.time(), []
    for i, (_, lr) in enumerate(pairs):
        sr = model.upscale_tensor(lr.float().unsqueeze(0) / 255, self_ensemble=True)[0]
        out.append(sr.mul(255).round().to(torch.uint8).cpu())
        if (i + 1) % 50 == 0:
            log.info("teacher: %d / %d images, %.0f s", i + 1, len(pairs), time.time() - t0)
    if cache:
        tmp = Path(cache).with_suffix(".tmp")
        torch.save(out, tmp)
        os.replace(tmp, cache)
    return out


@torch.no_grad()
def evaluate(model: Generator, val: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    modes = {m: m.training for m in model.modules()}
    model.eval()
    device = next(model.parameters()).device
    scores = []
    for hr, lr in val:
        sr = model(lr.float().unsqueeze(0).to(device) / 255)[0].cpu()
        sr = quantize(sr)
        scores.append(psnr(sr.double(), hr.double() / 255, crop_border=4).item())
    for m, training in modes.items():
        m.train(training)
    return float(np.mean(scores))


def sample_batch(pairs, weights, batch: int, lr_size: int, rng: random.Random):
    lrs, hrs = [], []
    while len(lrs) < batch:
        hr, lr = pairs[rng.choices(range(len(pairs)), weights=weights)[0]]
        h, w = lr.shape[-2:]
        if h < lr_size or w < lr_size:
            continue
        y, x = rng.randint(0, h - lr_size), rng.randint(0, w - lr_size)
        lp = lr[:, y : y + lr_size, x : x + lr_size]
        hp = hr[:, 4 * y : 4 * (y + lr_size), 4 * x : 4 * (x + lr_size)]
        if rng.random() < 0.5:
            lp, hp = lp.flip(-1), hp.flip(-1)
        if rng.random() < 0.5:
            lp, hp = lp.flip(-2), hp.flip(-2)
        if rng.random() < 0.5:
            lp, hp = lp.transpose(-1, -2), hp.transpose(-1, -2)
        lrs.append(lp)
        hrs.append(hp)
    return torch.stack(lrs), torch.stack(hrs)


def to_device(lr_u8: torch.Tensor, hr_u8: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 batches -> float [0, 1] on ``device`` (copied as uint8, asynchronously from pinned memory on CUDA)."""
    if device.type == "cuda":
        lr_u8, hr_u8 = lr_u8.pin_memory(), hr_u8.pin_memory()
    lr_b = lr_u8.to(device, non_blocking=True).float().div_(255).contiguous(memory_format=torch.channels_last)
    return lr_b, hr_u8.to(device, non_blocking=True).float().div_(255)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="+", required=True)
    ap.add_argument("--val", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=9000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--small-patch", type=int, default=24, help="LR patch size for the first part of training")
    ap.add_argument("--large-patch", type=int, default=32, help="LR patch size for the last part")
    ap.add_argument("--switch", type=float, default=0.67, help="fraction of steps before the larger patches")
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--ckpt-every", type=int, default=200)
    ap.add_argument("--init", default=None, help="warm-start generator weights (srgan checkpoint or state dict)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N] (bf16 autocast on both)")
    ap.add_argument(
        "--time-budget",
        type=float,
        default=None,
        help="seconds of training: after the warm-up the step count is fitted to it from the measured speed, so the "
        "cosine schedule ends on time",
    )
    ap.add_argument("--eval-at-start", action="store_true", help="validate (and checkpoint) before the first step")
    ap.add_argument(
        "--teacher",
        default=None,
        help="self-ensemble distillation: a model (name or file) whose x8 self-ensemble output on each training LR "
        "image becomes a second L1 target, weighted by --teacher-weight",
    )
    ap.add_argument("--teacher-weight", type=float, default=1.0)
    ap.add_argument("--teacher-cache", default=None, help="file keeping the teacher's outputs between runs")
    ap.add_argument(
        "--loss",
        choices=("l1", "mse"),
        default="l1",
        help="pixel loss (to HR and to the teacher): L1 converges faster; MSE is what PSNR measures (a final "
        "fine-tune)",
    )
    ap.add_argument(
        "--y-weight",
        type=float,
        default=0.0,
        help="weight of an extra pixel-loss term on the luma channel (the benchmark's PSNR is on Y)",
    )
    ap.add_argument(
        "--freeze-bn",
        action="store_true",
        help="keep batch norm in inference mode (running statistics fixed) while training: for fine-tuning",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)

    t0 = time.time()
    pairs = load_pairs(args.data)
    val = load_pairs([args.val])
    weights = [float(hr.shape[-1] * hr.shape[-2]) for hr, _ in pairs]
    if args.teacher:
        # The teacher's output rides along as channels 3..5 of the HR image, so crops and flips stay aligned.
        targets = teacher_targets(args.teacher, pairs, args.teacher_cache, args.device)
        pairs = [(torch.cat([hr, t]), lr) for (hr, lr), t in zip(pairs, targets, strict=True)]
    log.info("loaded %d training and %d validation images in %.1fs", len(pairs), len(val), time.time() - t0)

    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    model = Generator()
    if args.init:
        model.load_state_dict(load_checkpoint(args.init).state_dict)
    model = model.to(device, memory_format=torch.channels_last)
    if args.freeze_bn:
        # Batch norm as the fixed affine map it is at inference (running statistics, not the batch's): the
        # fine-tune then optimises exactly the function that is evaluated, on crops of any size.
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.eval()
    ema = copy.deepcopy(model)
    for p in ema.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.99), fused=True)
    ema_f = [t for t in ema.state_dict().values() if t.dtype.is_floating_point]
    model_f = [t for t in model.state_dict().values() if t.dtype.is_floating_point]
    ema_i = [t for t in ema.state_dict().values() if not t.dtype.is_floating_point]
    model_i = [t for t in model.state_dict().values() if not t.dtype.is_floating_point]
    warmup = 200

    def lr_at(step: int) -> float:
        if step < warmup:
            return args.lr * (step + 1) / warmup
        t = (step - warmup) / max(1, args.steps - warmup)
        return 1e-7 + 0.5 * (args.lr - 1e-7) * (1 + math.cos(math.pi * t))

    step, best = 0, -1.0
    ckpt = out / "last.pt"
    if ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        step, best = state["step"], state["best"]
        rng.setstate(state["py_rng"])
        torch.set_rng_state(state["torch_rng"].cpu())
        log.info("resumed at step %d (best %.3f)", step, best)

    def save() -> None:
        tmp = ckpt.with_suffix(".tmp")
        torch.save(
            {
                "model": model.state_dict(),
                "ema": ema.state_dict(),
                "opt": opt.state_dict(),
                "step": step,
                "best": best,
                "py_rng": rng.getstate(),
                "torch_rng": torch.get_rng_state(),
                "args": vars(args),
            },
            tmp,
        )
        os.replace(tmp, ckpt)

    base_loss = F.l1_loss if args.loss == "l1" else F.mse_loss

    def pixel_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """RGB pixel loss plus --y-weight times the same loss on the luma (Y of BT.601, what PSNR-Y measures)."""
        loss = base_loss(a, b)
        if args.y_weight:
            loss = loss + args.y_weight * base_loss(rgb_to_y(a) / 255, rgb_to_y(b) / 255)
        return loss

    metrics = open(out / "metrics.jsonl", "a")  # noqa: SIM115 - open for the whole run
    if args.eval_at_start:
        p0 = evaluate(ema, val)
        log.info("step %d val PSNR-Y ema %.3f (start)", step, p0)
        if p0 > best:
            best = p0
            torch.save(ema.state_dict(), out / "best_ema.tmp")
            os.replace(out / "best_ema.tmp", out / "best_ema.pt")
        save()
    t_last = t_start = t_rate = time.time()
    start_step = step
    loss_acc = torch.zeros((), device=device)
    fitted = args.time_budget is None
    while step < args.steps:
        size = args.small_patch if step < args.switch * args.steps else args.large_patch
        lr_b, hr_b = to_device(*sample_batch(pairs, weights, args.batch, size, rng), device)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            sr = model(lr_b)
        sr = sr.float()
        if args.teacher:
            hr_b, t_b = hr_b[:, :3], hr_b[:, 3:]
            loss = pixel_loss(sr, hr_b) + args.teacher_weight * pixel_loss(sr, t_b)
        else:
            loss = pixel_loss(sr, hr_b)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        with torch.no_grad():
            d = min(args.ema, (1 + step) / (10 + step))
            torch._foreach_lerp_(ema_f, model_f, 1 - d)
            torch._foreach_copy_(ema_i, model_i)
        loss_acc += loss.detach()
        if step % 50 == 0:
            mean_loss = loss_acc.item() / 50
            if not math.isfinite(mean_loss):
                raise FloatingPointError(f"loss became {mean_loss} by step {step}; last checkpoint kept at {ckpt}")
            dt = (time.time() - t_last) / 50
            log.info("step %d loss %.4f lr %.2e patch %d %.3fs/step", step, mean_loss, lr_at(step), size, dt)
            metrics.write(json.dumps({"step": step, "loss": mean_loss, "s_per_step": dt}) + "\n")
            metrics.flush()
            t_last = time.time()
            loss_acc.zero_()
        if not fitted and step - start_step in (warmup, warmup + 100):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if step - start_step == warmup:
                t_rate = time.time()
            else:
                # Fit the schedule to the time budget from the speed of the last 100 steps (never past --steps).
                rate = (time.time() - t_rate) / 100
                left = args.time_budget - (time.time() - t_start)
                args.steps = min(args.steps, step + max(0, int(left / rate)))
                fitted = True
                log.info("time budget: %.3fs/step, training to step %d", rate, args.steps)
        if step % args.eval_every == 0 or step == args.steps:
            p_ema = evaluate(ema, val)
            p_raw = evaluate(model, val)
            log.info("step %d val PSNR-Y ema %.3f raw %.3f", step, p_ema, p_raw)
            metrics.write(json.dumps({"step": step, "val_psnr_ema": p_ema, "val_psnr": p_raw}) + "\n")
            metrics.flush()
            if p_ema > best:
                best = p_ema
                torch.save(ema.state_dict(), out / "best_ema.tmp")
                os.replace(out / "best_ema.tmp", out / "best_ema.pt")
            save()
        elif step % args.ckpt_every == 0:
            save()
    save()
    log.info("done: best val %.3f", best)


if __name__ == "__main__":
    main()
