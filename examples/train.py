r"""Tune a small neural network on scikit-learn's digits with ``hydra/sweeper=bayesopt``.

One job trains an ``MLPClassifier`` (one to three hidden layers) on 70 % of the
8x8 digits and returns the log loss on the other 30 % (about 0.2-1 s on one
CPU core). Run a sweep from the repository root::

    python examples/train.py -m

which uses the search space in ``conf/config.yaml``; parameters on the command
line override it, for example::

    python examples/train.py -m hydra.sweeper.n_trials=30 \
        'model.lr=tag(log, interval(1e-4, 1e-1))' model.activation=relu

The sweep directory receives ``optimization_results.yaml`` (best parameters
and value) and ``bayesopt.db`` (the study; rerun the same command with
``hydra.sweep.dir`` fixed to resume it).
"""

from __future__ import annotations

import logging
import warnings

import hydra
from omegaconf import DictConfig

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def train(cfg: DictConfig) -> float:
    """Train on the digits and return the validation log loss (lower is better)."""
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import log_loss
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    X, y = load_digits(return_X_y=True)
    X_train, X_valid, y_train, y_valid = train_test_split(
        X, y, test_size=cfg.data.valid_fraction, random_state=cfg.data.seed, stratify=y
    )
    m = cfg.model
    net = MLPClassifier(
        hidden_layer_sizes=(int(m.hidden),) * int(m.layers),
        activation=m.activation,
        learning_rate_init=float(m.lr),
        alpha=float(m.alpha),
        max_iter=int(m.max_iter),
        random_state=cfg.data.seed,
    )
    model = make_pipeline(StandardScaler(), net)
    # one BLAS thread per job: parallel launchers run several jobs side by side
    with threadpool_limits(limits=cfg.threads), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train, y_train)
        loss = float(log_loss(y_valid, model.predict_proba(X_valid), labels=model.classes_))
        accuracy = float(model.score(X_valid, y_valid))
    log.info("validation log loss %.4f, accuracy %.4f", loss, accuracy)
    return loss


if __name__ == "__main__":
    train()
