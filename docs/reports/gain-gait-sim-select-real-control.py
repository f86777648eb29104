"""Control for the per-seed choice among six pretrained starts: `real` given six starts too. Per (N, seed): the
subset of the seed; starts j = 0..5 fit with seed' = seed + 100 j (init and batch order; j = 0 is diagnose gain's
real arm exactly); keep the one with the highest accuracy on the other training windows; its held-out accuracy."""
import json, sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
import numpy as np

def job(args):
    n, seed = args
    import torch
    torch.set_num_threads(1)
    from mdcli.config import load_config
    from mdcli.diagnose.gain import Data, GainConfig, _away_from, few_shot_indices
    from mdcli.diagnose.generation import embed
    from mdcli.models.classifier import SpectrogramClassifier
    from mdcli.train.classifier import fit_classifier
    fit = load_config(GainConfig, Path("configs/study/cpu.yaml"), ["fit.net.doppler_bins=8"]).fit
    data = Data(Path("train.h5"), Path("test.h5"))
    y = data.y.numpy()
    sel = few_shot_indices(y, n, seed, data.sequence, "blocked")
    other = _away_from(sel, y, data.sequence)
    out = []
    for j in range(6):
        s2 = seed + 100 * j
        torch.manual_seed(s2)
        m = SpectrogramClassifier(fit.net, len(data.names))
        m = fit_classifier(data.x[sel], data.y[sel], len(data.names), fit, s2, model=m)
        te = float((embed(m, data.x_test, 256)[1] == data.y_test).mean())
        tr = float((embed(m, data.x[torch.from_numpy(other)], 256)[1] == y[other]).mean())
        out.append((tr, te))
    return n, seed, out

if __name__ == "__main__":
    tasks = [(n, s) for n in (20, 50) for s in range(10)]
    with ProcessPoolExecutor(2) as ex:
        res = list(ex.map(job, tasks))
    json.dump(res, open("real_best_of.json", "w"))
    for n in (20, 50):
        rows = [r for r in res if r[0] == n]
        first = np.array([r[2][0][1] for r in rows])
        chosen = np.array([max(r[2])[1] for r in rows])
        mean6 = np.array([np.mean([t[1] for t in r[2]]) for r in rows])
        print(n, "real (j=0)", first.mean().round(3), "chosen of 6", chosen.mean().round(3), "mean of 6", mean6.mean().round(3))
