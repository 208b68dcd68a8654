"""The shape every paper entry shares: settings, models, data recipe, reported tables,
headline result, ambiguities and choices, and reporting checklist."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from covidlab.architectures import Head


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """One architecture as a paper describes it.

    ``layer_cutoff`` is the number of backbone layers, counted from the input, kept frozen
    (Apostolopoulos' Table 1); ``base_trainable`` says whether the rest of the backbone trains.
    """

    backbone: str
    head: Head
    base_trainable: bool = False
    layer_cutoff: int | None = None


@dataclass(frozen=True)
class Part:
    """Images of one paper class drawn from some source labels (:mod:`covidlab.sources`).

    ``count`` is ``None`` when the paper gives one number for the whole class.
    """

    source_labels: tuple[str, ...]
    count: int | None = None


@dataclass(frozen=True, kw_only=True)
class Headline:
    """A paper's headline result and the number of test predictions behind it.

    ``correct`` is ``round(value * n_test)`` unless the paper gives the counts; cross-validated
    numbers count every image once (the summed folds). ``source`` says where both come from.
    """

    model: str
    result: str
    value: float
    correct: int
    n_test: int
    source: str


#: Snapshots of Cohen's collection whose COVID-19 images the papers' counts need (the same
#: commits :mod:`covidlab.download` fetches). 548bb58 (24 March 2020) lists 100 frontal COVID-19
#: X-rays, of which the course's offline copy holds 96 (66 patients; the other 4 files are lost
#: from every mirror); 6a42423 holds 478 from 295 patients.
COHEN_MARCH_2020 = "548bb58d8e2dbffb8068904e330836187f538395"
COHEN_LATER = "6a4242344473ccb5ed0d2148d8c7bfb1691e4ed8"

#: The reporting checklist each paper is judged on, from its text (after Roberts et al. 2021).
CHECKLIST_ITEMS = (
    "patient-level split",
    "external test set",
    "confidence intervals",
    "class balance stated",
    "preprocessing fully specified",
    "code and data released",
)


@dataclass(frozen=True)
class Reported:
    """A table a paper reports, with where it comes from (e.g. "Table 4")."""

    table: pd.DataFrame
    cite: str
    note: str = ""


@dataclass(frozen=True)
class PaperSpec:
    """A paper's experimental setup and reported results.

    Attributes mirror what the methods section states; where the paper is silent the module
    fills in a choice and says so in ``choices``. ``recipe`` maps each class to the number of
    images the paper used; ``plan`` which source labels each class is drawn from (empty when
    the paper lists its files instead), ``variant_plans`` the plans of its other datasets.
    ``cohen_snapshot`` is the commit of Cohen's collection whose COVID-19 images the paper's
    counts need. ``checklist`` answers each of :data:`CHECKLIST_ITEMS` with "yes", "partial"
    or "no", for the reason given in ``checklist_note``.
    """

    key: str
    short_name: str
    citation: str  # bibtex key in references.bib
    title: str
    task: str
    classes: tuple[str, ...]
    input_size: tuple[int, int]
    resize: str  # "stretch" or "pad"
    optimizer: str
    learning_rate: float
    batch_size: int
    epochs: int
    protocol: str  # "holdout" or "kfold"
    models: dict[str, ModelSpec]
    recipe: dict[str, int]
    test_fraction: float | None = None
    validation_fraction: float | None = None
    n_splits: int | None = None
    reported: dict[str, Reported] = field(default_factory=dict)
    choices: tuple[str, ...] = ()  # what the paper left open and what we chose
    ambiguities: tuple[str, ...] = ()  # inconsistencies found in the paper
    headline: Headline | None = None
    plan: dict[str, tuple[Part, ...]] = field(default_factory=dict)
    variant_plans: dict[str, dict[str, tuple[Part, ...]]] = field(default_factory=dict)
    cohen_snapshot: str = ""
    checklist: dict[str, str] = field(default_factory=dict)
    checklist_note: str = ""

    @property
    def default_model(self) -> str:
        return next(iter(self.models))

    def settings_table(self) -> pd.DataFrame:
        """The training settings as a one-column table for printing in a chapter."""
        rows = {
            "classes": ", ".join(self.classes),
            "input size": f"{self.input_size[0]}x{self.input_size[1]} ({self.resize})",
            "optimizer": self.optimizer,
            "learning rate": self.learning_rate,
            "batch size": self.batch_size,
            "epochs": self.epochs,
            "protocol": self._protocol_text(),
            "models": ", ".join(self.models),
            "images per class": ", ".join(f"{k} {v}" for k, v in self.recipe.items()),
        }
        return pd.DataFrame({self.short_name: rows})

    def choices_markdown(self, *, ambiguities: bool = True, choices: bool = True) -> str:
        """The paper's ambiguities and this course's choices as Markdown numbered lists, for
        ``IPython.display.Markdown`` (a chapter renders them as text, not printed lines)."""
        sections = []
        if ambiguities and self.ambiguities:
            items = "\n".join(f"{i}. {text}" for i, text in enumerate(self.ambiguities, 1))
            sections.append(f"**Where {self.short_name} is ambiguous**\n\n{items}")
        if choices and self.choices:
            items = "\n".join(f"{i}. {text}" for i, text in enumerate(self.choices, 1))
            sections.append(f"**What this course chose**\n\n{items}")
        return "\n\n".join(sections)

    def _protocol_text(self) -> str:
        if self.protocol == "kfold":
            return f"{self.n_splits}-fold cross-validation"
        return f"hold-out, {self.test_fraction:.0%} test"

    def model_spec(self, model_name: str | None = None) -> ModelSpec:
        """One of the paper's architectures by name (default: the first, its headline model)."""
        name = model_name or self.default_model
        if name not in self.models:
            raise KeyError(
                f"{self.short_name} has no model {name!r}; choose from {list(self.models)}"
            )
        return self.models[name]
