"""Every command's examples, shown under its `-h` (the epilog `command()` builds): one place to read how each
command is called. Keyed by the command's full name."""

from __future__ import annotations

EXAMPLES: dict[str, list[str]] = {
    "simulate": [
        "mdcli simulate --targets walker,drone --n 200 -o data.h5",
        "mdcli simulate --config configs/tiny/simulate.yaml --set radar.prf_hz=8000 -o tiny.h5",
        "mdcli simulate --n 1000 --workers 2 --save-iq -o big.h5",
        "mdcli simulate --targets walker,mocap --mocap 35_01.amc --skeleton 35.asf -o walks.h5",
        "mdcli simulate --targets walker --identities 500 --per-identity 20 -o people.h5",
    ],
    "info": [
        "mdcli info data.h5",
        "mdcli info data.h5 --json | jq .classes",
    ],
    "plot": [
        "mdcli plot data.h5 -o grid.png",
        "mdcli plot data.h5 -o grid.png --per-class 6 --seed 3",
        "mdcli plot data.h5 --ae ae.h5 -o recon.png   # inputs over their reconstructions",
    ],
    "import": [
        "mdcli import ../shared/data/gait --colormap jet --image-size 128,128 -o gait.h5",
        "mdcli import recordings/ --input-scale db --doppler-range -1000,1000 --duration 3 -o meas.h5",
        "mdcli import iq/ --iq-rate 4000 --variable iq -o meas.h5   # complex slow-time .npy/.mat",
        "mdcli import exported.npz -o back.h5",
    ],
    "export": [
        "mdcli export samples.h5 --format npz -o samples.npz",
        "mdcli export samples.h5 --format mat -o samples.mat",
        "mdcli export samples.h5 --format png --colormap jet -o samples_png/",
    ],
    "merge": [
        "mdcli merge shard_0.h5 shard_1.h5 shard_2.h5 -o data.h5",
        "mdcli merge runs/shards/*.h5 -o data.h5",
    ],
    "split": [
        "mdcli split gait.h5 --split blocked --test-fraction 0.3 --train-out train.h5 --test-out test.h5",
        "mdcli split data.h5 --seed 1 --train-out train.h5 --test-out test.h5",
    ],
    "subset": [
        "mdcli subset train.h5 --per-class 20 --seed 0 -o few20.h5",
        "(then train-ae / encode / train-ldm / sample on few20.h5, and\n  mdcli diagnose generation --samples s20.h5 --train few20.h5 --set few=[20] --set seeds=[0] ...)",
    ],
    "train-classifier": [
        "mdcli train-classifier --data data.h5 -o classifier.h5",
        "mdcli train-classifier --data data.h5 --seed 1 -o judge.h5   # an independent judge",
        "mdcli train-classifier --config configs/tiny/train-classifier.yaml --data tiny.h5 -o clf.h5",
        "mdcli train-classifier --data few20.h5 --extra samples.h5 --extra-weight 0.5 --extra-ratio 1 -o clf.h5   # augmented",
        "mdcli train-classifier --data sim.h5 -o sim_clf.h5 && mdcli train-classifier --data few20.h5 --init sim_clf.h5 --finetune all -o clf.h5   # pretrain, then fine-tune (a fresh head for other classes)",
    ],
    "classify": [
        "mdcli classify --data test.h5 --classifier clf.h5",
        "mdcli classify --data new.h5 --classifier ft0.h5 --classifier ft1.h5 --classifier ft2.h5 --json-out labels.json   # an ensemble: the mean of their class probabilities",
    ],
    "train-ae": [
        "mdcli train-ae --data data.h5 --arch vqgan --classifier classifier.h5 -o ae.h5",
        "mdcli train-ae --data data.h5 --arch vae --perceptual none --set vae.kl_weight=1e-4 -o vae.h5",
        "mdcli train-ae --data data.h5 --arch vqvae --perceptual lpips-vgg --perceptual-weights vgg16-397923af.pth -o vq.h5",
        "mdcli train-ae ... --resume   # continue exactly from OUTPUT.ckpt",
        "mdcli train-ae --config ae.yaml --data measured.h5 --init sim_ae.h5 -o ae.h5   # fine-tune a pretrained one",
    ],
    "train-ldm": [
        "mdcli train-ldm --latents latents.h5 -o ldm.h5",
        "mdcli train-ldm --latents latents.h5 --set diffusion.prediction=v --set diffusion.schedule=cosine -o ldm.h5",
        "mdcli train-ldm --config configs/tiny/train-ldm.yaml --latents tiny_latents.h5 -o ldm.h5",
        "mdcli train-ldm --latents measured_latents.h5 --init sim_ldm.h5 -o ldm.h5   # fine-tune a pretrained one",
    ],
    "encode": [
        "mdcli encode --ae ae.h5 --data data.h5 -o latents.h5",
        "mdcli encode --ae ae.h5 --data data.h5 -o latents.h5 --batch-size 256 --quiet",
    ],
    "sample": [
        "mdcli sample --ldm ldm.h5 -o samples.h5 --n-per-class 64",
        "mdcli sample --ldm ldm.h5 -o samples.h5 --classes walker,drone --sampler ddim --steps 50 --eta 0",
        "mdcli sample --ldm ldm.h5 -o samples.h5 --sampler ddpm --steps 1000 --cfg-scale 1 --preview grid.png",
    ],
    "augment": [
        "mdcli augment --ldm ldm.h5 --data train.h5 --per-image 10 --strength 0.3:0.6 -o variations.h5",
        "mdcli augment --ldm ldm.h5 --data train.h5 --strength 0.5 --filter confidence:clf.h5,min=0.8 --filter novelty:clf.h5 --filter kinematic:margin=0.25 -o variations.h5 --preview grid.png",
        "mdcli augment --config configs/gait/augment.yaml --ldm ldm.h5 --data few.h5 -o variations.h5",
        "mdcli augment --ldm measured-ldm.h5 --data virtual.h5 --condition null --strength 0.5 --per-image 1 -o carried.h5",
    ],
    "report": [
        "mdcli report runs/demo",
    ],
    "diagnose recon": [
        "mdcli diagnose recon --ae ae.h5 --data data.h5",
        "mdcli diagnose recon --ae ae.h5 --data data.h5 --classifier judge.h5 --json",
    ],
    "diagnose codebook": [
        "mdcli diagnose codebook --ae vq.h5 --data data.h5",
        "mdcli diagnose codebook --latents latents.h5 --json --plot figs/",
    ],
    "diagnose latent": [
        "mdcli diagnose latent --ae ae.h5 --data data.h5",
        "mdcli diagnose latent --ae vae.h5 --data data.h5 --json --plot figs/",
    ],
    "diagnose collapse": [
        "mdcli diagnose collapse --ae ae.h5 --data data.h5",
        "mdcli diagnose collapse --ae vq.h5 --data data.h5 --set damage_ratio_max=0.4 --json",
    ],
    "diagnose diffusability": [
        "mdcli diagnose diffusability --latents latents.h5",
        "mdcli diagnose diffusability --latents latents.h5 --classifier judge.h5 --real test.h5 --json",
    ],
    "diagnose generation": [
        "mdcli diagnose generation --samples samples.h5 --real test.h5 --classifier judge.h5",
        "mdcli diagnose generation --samples samples.h5 --real test.h5 --train train.h5 --classifier judge.h5 --set seeds=[0,1,2] --json",
    ],
    "diagnose gain": [
        "mdcli diagnose gain --train train.h5 --test test.h5 --per-class 20,50 --seeds 5",
        "mdcli diagnose gain --train train.h5 --test test.h5 --per-class 20,50 --seeds 5 --jobs 4 --arm gen=append:samples.h5 --arm sim=pretrain:sim.h5 --arm var=append:variations.h5,weight=0.3 --arm cas=only:samples.h5 --json --plot figs/",
        "mdcli diagnose gain --train train.h5 --test test.h5 --per-class 20 --seeds 3 --arm gen=append:runs/gen_{n}_{seed}/samples.h5   # one generator per subset (mdcli subset --per-class N --seed S)",
    ],
    "diagnose gain-pool": [
        "mdcli diagnose gain-pool first.json next.json --md-out pooled.md --json-out pooled.json   # --first-seed 0 and 6, --seeds 6 each",
    ],
    "diagnose separability": [
        "mdcli diagnose separability --data measured.h5",
        "mdcli diagnose separability --data measured.h5 --data virtual.h5 --run 20 --json",
    ],
    "diagnose domain": [
        "mdcli diagnose domain --a sim.h5 --b measured.h5",
        "mdcli diagnose domain --a sim.h5 --b measured.h5 --classifier judge.h5 --plot figs/ --json",
    ],
    "study": [
        "mdcli study --profile configs/study/cpu.yaml --dataset sim --out runs/study/cpu/sim",
        "mdcli study --profile configs/study/cpu.yaml --dataset gait --gait-dir ../shared/data/gait --out runs/study/cpu/gait",
        "mdcli study --profile configs/study/tiny.yaml --dataset sim --data tiny.h5 --arms vae,vqvae --judges none --out runs/study/tiny",
    ],
}

# Paragraphs after the examples.
NOTES: dict[str, str] = {
    "diagnose gain": "Modes: append (weight, ratio, prob), pretrain (finetune=all|head, steps=S, lr=X, augment=none|classic), mixed-then-real (weight, ratio, prob), only; and init:CLASSIFIER.h5 (finetune, lr, augment): every seed starts from one classifier trained before (train-classifier), e.g. on simulated identities.",
}


def epilog(name: str) -> str:
    """The `-h` epilog of command `name`: its examples, then its notes."""
    parts = ["Examples:"] + ["  " + e for e in EXAMPLES[name]] + ([NOTES[name]] if name in NOTES else [])
    return "\n\n".join(parts)
