"""Networks: shared encoder/decoder, Gaussian and vector-quantised bottlenecks, PatchGAN, classifier."""
