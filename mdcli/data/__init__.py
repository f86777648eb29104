"""Spectrogram data in and out: batches (artifacts as [-1, 1] tensors for the networks, the streamed batch
reader), splits (stratified random or blocked), importing (`mdcli import`) and exporting (`mdcli export`).

Nothing is imported here: `batches` imports torch, and `import`, `export` and `split` do not need it.
"""
