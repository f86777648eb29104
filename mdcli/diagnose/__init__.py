"""`mdcli diagnose` and `mdcli report`: what an autoencoder keeps, how its latents behave and what the
generator is worth.

recon (and `plot --ae`), codebook, latent (+ the collapse rules), diffusability, generation (+ the
classifier fits in `fitworker` processes), gain, domain; constructed (deliberately broken autoencoders),
kinematics (physical features of the spectrograms), stats (the estimators), report (REPORT.md).
Nothing is imported here: the modules import torch, and `mdcli -h` must not.
"""
