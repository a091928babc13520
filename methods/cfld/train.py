"""CFLD training with Accelerate (``pgpis train --method cfld``).

The official recipe (reference cfld.md §4-§6): the joint batch trains src->src and src->tgt at once
(latents ``cat([src, tgt])``, pose maps ``cat([pose_src, pose_tgt])``, the appearance of the
source for both); each of the 2B prompts is replaced by the learnable vector with probability
``u_cond_percent`` (0.2); timesteps ``t = long((1 - u^3) * 1000)``; plain MSE on the noise (or on x0 / v with ``prediction_type``); Adam
with linear warm-up and step decay. Launch on several GPUs/nodes with ``accelerate launch``.

Exact resume: every random draw of a micro-step (flip, timesteps, noise, prompt dropout, VAE
sample) comes from a generator seeded by (seed, micro-step, process), the shuffle depends only on
(seed, epoch), and ``skip_first_batches`` restarts mid-epoch; model, optimizer and RNG states are
saved with ``accelerator.save_state`` into a folder renamed into place when complete.
"""

from __future__ import annotations

import logging
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.api import TEMP_PREFIX, ConfigError, pair_seed, write_json_atomic
from methods.cfld.cpu_support import warn_if_emulated
from methods.cfld.schedulers import make_scheduler
from methods.cfld.train_settings import TrainSettings, lr_at

log = logging.getLogger(__name__)
PIPELINE_FILE = "pipeline.json"  # latent codec + sampling settings, beside config.json/model.safetensors
STATE_FILE = "trainer_state.json"


class TrainStep(nn.Module):
    """The module handed to ``accelerator.prepare``: DDP only syncs gradients through ``forward``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        img_cond: torch.Tensor,
        pose: torch.Tensor,
        noisy: torch.Tensor,
        timesteps: torch.Tensor,
        target: torch.Tensor,
        drop: torch.Tensor,
    ) -> torch.Tensor:
        m = self.model
        prompt, hga = m.encode_appearance(img_cond)
        pose_features = m.encode_pose(pose)
        # Source appearance serves both halves of the joint batch (official build_model.forward).
        prompt = torch.cat([prompt, prompt])
        hga = {k: torch.cat([v, v]) for k, v in hga.items()}
        lv = m.learnable_vector.expand_as(prompt).to(prompt.dtype)
        prompt = lv * drop + prompt * (1 - drop)
        pred = m.unet_forward(noisy, timesteps, prompt, pose_features=pose_features, hga_biases=hga)
        return F.mse_loss(pred.float(), target.float())


@dataclass
class Draws:
    """Every random input of one micro-step."""

    flip: torch.Tensor
    timesteps: torch.Tensor
    noise_gen: torch.Generator
    drop: torch.Tensor


def mixed_precision_for(requested: str, use_cuda: bool) -> str:
    """The mixed precision a run really uses, announced where it is not the one asked for.

    On GPUs: as configured. On CPU, Accelerate autocasts bf16 but has no fp16 autocast (it would
    silently train in fp32), so fp16 becomes "no" with a warning; bf16 runs, with a warning where
    this CPU emulates it (many times slower than fp32)."""
    if use_cuda or requested == "no":
        return requested
    if requested == "fp16":
        warnings.warn(
            "cfld train: mixed_precision fp16 needs a CUDA GPU (Accelerate has no fp16 autocast on CPU); "
            "this run trains in fp32. Set mixed_precision: no (or bf16 for CPU autocast) in the train config.",
            stacklevel=2,
        )
        return "no"
    warn_if_emulated(requested, advice="Set mixed_precision: no in the train config to train in fp32.")
    return requested


def micro_generator(seed: int, micro_step: int, rank: int) -> torch.Generator:
    return torch.Generator().manual_seed(pair_seed(seed, f"cfld-train/{micro_step}/{rank}"))


def prepare_inputs(
    batch: dict[str, torch.Tensor],
    codec: Any,
    noise_scheduler: Any,
    settings: TrainSettings,
    u_cond_percent: float,
    gen: torch.Generator,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """Build the forward inputs of one micro-step (all draws from ``gen``, on the CPU)."""
    bsz = batch["img_cond"].shape[0]
    num_t = noise_scheduler.config.num_train_timesteps
    flip = (
        torch.rand(bsz, generator=gen) < 0.5
        if settings.flip_condition
        else torch.zeros(bsz, dtype=torch.bool)
    )
    img_cond = batch["img_cond"].to(device)
    img_cond = torch.where(flip.to(device)[:, None, None, None], img_cond.flip(-1), img_cond) * 2 - 1
    images = torch.cat([batch["img_src"], batch["img_tgt"]]).to(device) * 2 - 1
    with torch.no_grad():
        latents = codec.encode(images, generator=gen).float()
    noise = torch.randn(latents.shape, generator=gen).to(device)
    if settings.cubic_sampling:
        u = torch.rand(2 * bsz, generator=gen)
        timesteps = ((1 - u**3) * num_t).long().clamp(0, num_t - 1)
    else:
        timesteps = torch.randint(0, num_t, (2 * bsz,), generator=gen)
    timesteps = timesteps.to(device)
    drop = (torch.rand(2 * bsz, 1, 1, generator=gen) < u_cond_percent).float().to(device)
    noisy = noise_scheduler.add_noise(latents, noise, timesteps)
    if settings.prediction_type == "epsilon":
        target = noise
    elif settings.prediction_type == "sample":
        target = latents
    else:
        target = noise_scheduler.get_velocity(latents, noise, timesteps)
    pose = torch.cat([batch["pose_src"], batch["pose_tgt"]]).to(device)
    return {
        "img_cond": img_cond,
        "pose": pose,
        "noisy": noisy,
        "timesteps": timesteps,
        "target": target,
        "drop": drop,
    }


@dataclass
class TrainResult:
    out: Path
    model_dir: Path
    global_step: int
    losses: dict[int, float] = field(default_factory=dict)  # optimizer step (1-based) -> mean loss
    seconds: float = 0.0
    is_main_process: bool = True  # False on the other ranks of a multi-process run


def _checkpoints(out: Path) -> list[Path]:
    root = out / "checkpoints"
    if not root.is_dir():
        return []
    done = [p for p in root.iterdir() if p.name.startswith("step_") and (p / STATE_FILE).is_file()]
    return sorted(done, key=lambda p: int(p.name.split("_")[1]))


def _build_model(settings: TrainSettings) -> nn.Module:
    from methods.cfld.config import CFLDConfig
    from methods.cfld.model import CFLDModel

    cfg = CFLDConfig.from_dict(dict(settings.model))
    unet = None
    if settings.init_unet:
        from methods.cfld.pretrained import load_unet

        unet = load_unet(settings.init_unet)
    model = CFLDModel(cfg, unet=unet)
    if settings.init_swin:
        from methods.cfld.pretrained import load_swin_imagenet

        load_swin_imagenet(model.backbone, settings.init_swin)
    if settings.gradient_checkpointing:
        model.unet.enable_gradient_checkpointing()
    return model


def _sizes(
    model: nn.Module, settings: TrainSettings
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    # gt_img_size is the image the UNet denoises (through the codec): INPUT.GT.IMG_SIZE.
    cfg = model.config
    return tuple(cfg.gt_img_size), tuple(cfg.swin.img_size), tuple(cfg.pose.img_size)


def save_final(
    model: nn.Module, codec: Any, settings: TrainSettings, folder: Path, extra: dict[str, Any]
) -> None:
    """Write the final model (safetensors + config.json + pipeline.json) into ``folder`` atomically:
    built in a sibling temp folder, then renamed over the old one."""
    from methods.cfld.checkpoint import save_pretrained
    from methods.cfld.pipeline import SamplingSettings

    sampling = SamplingSettings.from_dict(
        {
            **settings.sampling,
            "diffusion_size": list(model.config.gt_img_size),
            "prediction_type": settings.prediction_type,
        }
    ).to_dict()
    # The suite's one temporary prefix (bench.io), without host/pid: every rank must agree on the name.
    tmp = folder.with_name(f"{TEMP_PREFIX}{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_pretrained(model, tmp)
    write_json_atomic(
        tmp / PIPELINE_FILE, {"latent": codec.describe(), "sampling": sampling, "training": extra}
    )
    old = folder.with_name(f"{TEMP_PREFIX}{folder.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def train(
    settings: TrainSettings,
    dataset_root: str,
    out: str | Path,
    max_steps: int | None = None,
    resume: bool = False,
    tracker: str = "none",
) -> TrainResult:
    """Train; on CPU with deterministic algorithms (and the kernels of ``settings.cpu_kernels``), so
    the result depends on the environment and ``cpu_threads`` only, not on the machine's load."""
    from methods.cfld.cpu_determinism import check_pinned, deterministic_kernels

    on_cpu = not torch.cuda.is_available()
    if on_cpu:
        check_pinned(settings.cpu_kernels)
    with deterministic_kernels(settings.cpu_kernels, cpu=on_cpu):
        return _train(settings, dataset_root, out, max_steps, resume, tracker)


def _train(
    settings: TrainSettings,
    dataset_root: str,
    out: str | Path,
    max_steps: int | None,
    resume: bool,
    tracker: str,
) -> TrainResult:
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState
    from accelerate.utils import DistributedDataParallelKwargs, set_seed
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    from methods.cfld.train_data import CFLDTrainData, EpochSampler, collate
    from methods.cfld.vae import build_codec

    out = Path(out)
    started = time.time()
    if settings.cpu_threads:
        torch.set_num_threads(int(settings.cpu_threads))
    existing = _checkpoints(out)
    if existing and not resume:
        raise ConfigError(
            f"{out} already holds training checkpoints ({existing[-1].name}); pass --resume to continue "
            "from the latest one, or choose another --out"
        )
    use_cuda = torch.cuda.is_available()
    # A fresh Accelerator per run (the state is a process-wide singleton; tests train several times).
    AcceleratorState._reset_state()
    GradientState._reset_state()
    accelerator = Accelerator(
        # Without CUDA, cpu=True makes processes started by `accelerate launch` (torch.distributed.run)
        # join one gloo group; otherwise each would run alone as rank 0 and they would race on the
        # same checkpoint files.
        cpu=not use_cuda,
        mixed_precision=mixed_precision_for(settings.mixed_precision, use_cuda),
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        log_with=["mlflow"] if tracker == "mlflow" else None,
        project_dir=str(out),
        kwargs_handlers=[DistributedDataParallelKwargs(bucket_cap_mb=200, gradient_as_bucket_view=True)],
    )
    if use_cuda:
        torch.backends.cuda.matmul.allow_tf32 = settings.allow_tf32
        torch.backends.cudnn.allow_tf32 = settings.allow_tf32
    set_seed(settings.seed)  # identical initial weights on every process

    model = _build_model(settings)
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(
        accelerator.mixed_precision, torch.float32
    )
    # The frozen VAE runs in the mixed-precision dtype, as the official code keeps it in fp16.
    codec = build_codec(dict(settings.latent)).to(accelerator.device, dtype=weight_dtype)
    diffusion, cond_size, pose_size = _sizes(model, settings)
    data = CFLDTrainData(dataset_root, diffusion, cond_size, pose_size)
    per_process = settings.batch_size // accelerator.num_processes // settings.gradient_accumulation_steps
    if per_process < 1 or len(data) < per_process * accelerator.num_processes:
        raise ConfigError(
            f"batch_size {settings.batch_size} gives {per_process} pairs per process and step with "
            f"{accelerator.num_processes} process(es) and {settings.gradient_accumulation_steps} accumulation "
            f"step(s), for {len(data)} training pairs in {dataset_root}; change batch_size in the train config"
        )
    sampler = EpochSampler(len(data), settings.seed)
    loader = DataLoader(
        data, batch_size=per_process, sampler=sampler, drop_last=True, collate_fn=collate,
        num_workers=settings.num_workers, pin_memory=use_cuda,
    )  # fmt: skip
    params = list(model.trainable_parameters())
    # Fused: one kernel over every parameter (the same Adam). On a 2-core CPU torch's default
    # per-parameter loop took ~10% of a tiny-CFLD step; on GPUs fused is the fastest kernel too.
    optimizer = torch.optim.Adam(params, lr=settings.lr, fused=True)
    step_module = TrainStep(model)
    step_module, optimizer, loader = accelerator.prepare(step_module, optimizer, loader)
    noise_scheduler = make_scheduler("ddpm")
    ema = None
    if settings.ema_decay:
        from methods.cfld.ema import EMA

        ema = EMA(params, settings.ema_decay)
        accelerator.register_for_checkpointing(ema)

    micro_per_epoch = len(loader)
    steps_per_epoch = max(1, micro_per_epoch // settings.gradient_accumulation_steps)
    total = int(max_steps or settings.max_steps or settings.epochs * steps_per_epoch)
    global_step = 0
    if resume and existing:
        accelerator.load_state(str(existing[-1]))
        import json

        global_step = int(json.loads((existing[-1] / STATE_FILE).read_text())["global_step"])
        log.info("resumed from %s (step %d)", existing[-1], global_step)
    if tracker == "mlflow":
        flat = {k: str(v) for k, v in settings.to_dict().items()}
        accelerator.init_trackers(
            "pgpis-cfld", config={**flat, "dataset": str(dataset_root), "total_steps": total}
        )

    result = TrainResult(
        out=out, model_dir=out / "model", global_step=global_step, is_main_process=accelerator.is_main_process
    )
    micro_step = global_step * settings.gradient_accumulation_steps
    u_cond = float(model.config.u_cond_percent)
    bar = tqdm(
        total=total, initial=global_step, desc="cfld train", disable=not accelerator.is_local_main_process
    )
    window: list[float] = []
    step_module.train()
    while global_step < total:
        epoch, skip = divmod(micro_step, micro_per_epoch)
        # Through the prepared loader: it re-applies its own epoch counter to the sampler on every
        # pass, so setting only the sampler would be undone after a resume.
        loader.set_epoch(epoch)
        batches = accelerator.skip_first_batches(loader, skip) if skip else loader
        for batch in batches:
            gen = micro_generator(settings.seed, micro_step, accelerator.process_index)
            inputs = prepare_inputs(batch, codec, noise_scheduler, settings, u_cond, gen, accelerator.device)
            for group in optimizer.param_groups:
                group["lr"] = lr_at(global_step, settings, steps_per_epoch)
            with accelerator.accumulate(step_module):
                loss = step_module(**inputs)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"CFLD training loss is {loss.item()} at step {global_step + 1}")
                accelerator.backward(loss)
                if accelerator.sync_gradients and settings.max_grad_norm:
                    accelerator.clip_grad_norm_(params, settings.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            micro_step += 1
            window.append(accelerator.gather(loss.detach().reshape(1)).mean().item())
            if not accelerator.sync_gradients:
                continue
            global_step += 1
            if ema is not None:
                ema.update()
            step_loss = sum(window) / len(window)
            window = []
            result.losses[global_step] = step_loss
            bar.update(1)
            bar.set_postfix(loss=f"{step_loss:.4f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")
            if global_step % settings.log_every == 0 or global_step == total:
                accelerator.log({"loss": step_loss, "lr": optimizer.param_groups[0]["lr"]}, step=global_step)
            if global_step % settings.checkpoint_every == 0 or global_step == total:
                _save_checkpoint(accelerator, out, global_step, settings.keep_checkpoints)
            if global_step >= total:
                break
    bar.close()
    accelerator.wait_for_everyone()
    result.global_step = global_step
    result.seconds = time.time() - started
    if accelerator.is_main_process:
        from bench.api import package_versions

        extra = {
            "steps": global_step,
            "dataset": str(dataset_root),
            "settings": settings.to_dict(),
            # What decides the bits besides the settings: the packages (and the lock they came from)
            # and the kernels torch dispatched to. No commit or path: a fresh clone's model is the same.
            "versions": package_versions(),
            "cpu_capability": None if use_cuda else torch.backends.cpu.get_cpu_capability(),
        }
        final = accelerator.unwrap_model(step_module).model
        if ema is not None:
            ema.copy_to(params)  # the saved model is the average; training is over
            extra["weights"] = f"ema (decay {settings.ema_decay}, {ema.updates} updates)"
        save_final(final, codec, settings, result.model_dir, extra)
    accelerator.end_training()
    return result


def _save_checkpoint(accelerator: Any, out: Path, step: int, keep: int) -> None:
    """``save_state`` into a temp folder renamed into place, so a killed job never leaves a half
    checkpoint that --resume would pick up."""
    root = out / "checkpoints"
    final = root / f"step_{step:08d}"
    tmp = root / f"{TEMP_PREFIX}step_{step:08d}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        write_json_atomic(tmp / STATE_FILE, {"global_step": step})
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        for old in _checkpoints(out)[:-keep] if keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


__all__ = ["PIPELINE_FILE", "TrainResult", "TrainStep", "prepare_inputs", "save_final", "train"]
