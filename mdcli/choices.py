"""Option choices shared by the CLI's help, config validation and the study runner.

Kept free of torch so that `mdcli --help` and argument parsing stay fast.
"""

# `--perceptual` / loss.perceptual of train-ae: the autoencoders' perceptual loss.
PERCEPTUAL_CHOICES = ("domain", "lpips-vgg", "lpips-alex", "none")
